"""A budgeted stream's running cost, held against what its reservation covers.

Providers report output tokens at the end of a stream (Anthropic's
``message_delta``, OpenAI's last chunk, Bedrock's metadata event), so while a
stream runs its output is estimated from the bytes relayed after the opening
event (``message_start`` or the first chunk, which carry no output). Once this
key has streamed this model, the estimate divides by the fewest bytes a token
took in its recent streams (limits.py learns it at settlement) and adds the
quarter the reservation added to the learned output, so it errs high; before
that, it takes one token per three bytes of each event past the event's fixed
framing, and at least one per event, which over-counts text (about four bytes
a token) on purpose. The estimate only decides when to top
the reservation up: settlement uses the provider's own figures, and only a
stream cut before they arrive is charged at the estimate.

Input is known exactly once the provider reports it (Anthropic's
``message_start``); until then the reservation's own estimate stands for it.

When what the stream may owe passes what is held by more than a slack of 32
tokens, the relay asks the counter store for the difference plus one increment
(half the reserved output, at least 1,024 tokens) before it relays more; when
a level cannot cover it, the stream is cut. So a stream relays at most the slack past what its budgets
covered (docs/budgets.md states the whole bound).
"""

from __future__ import annotations

from typing import Any

from dataplane.limits import NANO, OUTPUT_MARGIN, Plan

# Bytes of SSE framing around an event's text, by caller shape, a little under the
# smallest seen: an Anthropic text delta is 115 bytes and its text, an OpenAI
# chat chunk 150 and up, a Gemini chunk 130 and up.
_FRAMING = {"anthropic": 112, "openai": 140, "gemini": 120}
# How an event ends, by caller shape: Google's SSE separates events with CRLF CRLF.
EVENT_END = {"gemini": b"\r\n\r\n"}
MIN_INCREMENT_TOKENS = 1024
SLACK_TOKENS = 32


class StreamMeter:
    __slots__ = (
        "plan", "_price", "_framing", "_output_nano", "tokens", "_input_nano", "_input_known", "_increment",
        "_opened", "_slack", "_unsent", "_end",
    )

    def __init__(self, plan: Plan, price: Any, shape: str) -> None:
        est = plan.estimate
        assert est is not None
        self.plan = plan
        self._price = price
        self._framing = _FRAMING.get(shape, 100)
        self._end = EVENT_END.get(shape, b"\n\n")
        # The served model's price when it has one, else the dearest the reservation used.
        self._output_nano = float(price.output * NANO) if price is not None else est.output_nano
        self.tokens = 0
        self._input_nano = max(plan.held - int(plan.output_tokens * est.output_nano), 0)
        self._input_known = False
        self._increment = int(max(plan.output_tokens // 2, MIN_INCREMENT_TOKENS) * self._output_nano)
        self._opened = False
        self._slack = int(SLACK_TOKENS * self._output_nano)
        self._unsent = 0  # tokens of the chunk last measured, until it is relayed

    def need(self, out: bytes, usage: Any) -> int:
        """Nano-USD to add to the reservation before ``out`` is relayed; 0 when it is covered."""
        size = len(out)
        end = self._end
        events = out.count(end)
        if not self._opened:
            # The opening event carries the model and input usage, no output.
            opening = out.find(end)
            if opening < 0:
                return 0
            self._opened = True
            size -= opening + len(end)
            events -= 1
        before = self.tokens
        if size > 0:
            plan = self.plan
            plan.relayed += size
            if plan.bytes_per_token > 0:
                self.tokens = int(plan.relayed * OUTPUT_MARGIN / plan.bytes_per_token) + 1
            else:
                events = events or 1
                self.tokens += max(events, (size - events * self._framing) // 3)
        if not self._input_known and (usage.input_tokens or usage.cache_read_tokens or usage.cache_write_tokens):
            self._input_known = True
            price = self._price
            if price is not None:
                self._input_nano = int(
                    (usage.input_tokens * price.input + usage.cache_write_tokens * price.cache_write
                     + usage.cache_read_tokens * price.cache_read) * NANO
                )
        self._unsent = self.tokens - before
        if usage.stop_reason:
            return 0  # the provider has finished: its own count settles it
        owed = self._input_nano + int(max(self.tokens, usage.output_tokens) * self._output_nano)
        if owed <= self.plan.held + self._slack:
            return 0
        return owed - self.plan.held + self._increment

    @property
    def relayed_tokens(self) -> int:
        """Output that reached the client, when the chunk last measured was held back."""
        return self.tokens - self._unsent
