from django.apps import AppConfig


class DeviceLoginConfig(AppConfig):
    name = "devicelogin"
    verbose_name = "Claude Code sign-in"
