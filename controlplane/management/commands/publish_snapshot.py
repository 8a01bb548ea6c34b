from django.core.management.base import BaseCommand

from governance.snapshot import snapshot_publish


class Command(BaseCommand):
    help = "Publish the current configuration snapshot for the data plane."

    def handle(self, *args, **options):
        version = snapshot_publish()
        self.stdout.write(f"snapshot version {version} published")
