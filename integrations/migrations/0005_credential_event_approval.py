"""History entries for in-app approval (Monzo's Strong Customer Authentication): the
association went to awaiting approval, and approval was first noticed."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0004_credential_event_adopted"),
    ]

    operations = [
        migrations.AlterField(
            model_name="credentialevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("connected", "Connected"),
                    ("refreshed", "Refreshed"),
                    ("refresh_failed", "Refresh Failed"),
                    ("reauth_required", "Reauth Required"),
                    ("awaiting_approval", "Awaiting Approval"),
                    ("approved", "Approved"),
                    ("revoked", "Revoked"),
                    ("disconnected", "Disconnected"),
                    ("adopted", "Adopted"),
                ],
                max_length=32,
            ),
        ),
    ]
