from django.contrib import admin

from audit.models import AuditArchive, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    # Append-only: the admin can read the trail, never edit it (and the
    # database would refuse if it tried: audit/guard.py).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "actor_label", "action", "target_label", "ip")
    list_filter = ("action",)
    search_fields = ("actor_label", "target_label", "action", "request_id", "hash")


@admin.register(AuditArchive)
class AuditArchiveAdmin(ReadOnlyAdmin):
    list_display = ("first_seq", "last_seq", "events", "created_at", "location")
