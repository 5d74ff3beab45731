from django.apps import AppConfig


class DemoProviderConfig(AppConfig):
    name = "demo_provider"
    verbose_name = "Demo OAuth provider"
