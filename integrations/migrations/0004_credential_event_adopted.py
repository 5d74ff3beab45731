"""The "adopted" history entry (manage.py adopt_credentials), and the index's expiry of rows
stock Python Social Auth wrote.

0003 indexed every association by its ``expires_at``; rows PSA wrote keep their expiry as
``expires``/``expires_in``/``expires_on`` instead, so they were indexed with none and the
background refresh never found them due. They are indexed again here, by the store's own
reading of a stored expiry: the index is derived data and must say what the store says.
Reversing is a no-op (the index rows stay correct either way).
"""

from django.db import migrations, models

BATCH = 500
PSA_EXPIRY_KEYS = ["expires", "expires_in", "expires_on"]


def reindex_psa_expiry(apps, schema_editor):
    from integrations.store.credentials import expires_at_of
    from integrations.store.times import to_datetime

    UserSocialAuth = apps.get_model("social_django", "UserSocialAuth")
    CredentialState = apps.get_model("integrations", "CredentialState")
    alias = schema_editor.connection.alias
    rows = (
        UserSocialAuth.objects.using(alias)
        .filter(extra_data__has_any_keys=PSA_EXPIRY_KEYS)
        .exclude(extra_data__has_key="expires_at")
        .order_by("pk")
        .values_list("pk", "extra_data")
    )
    for pk, extra_data in rows.iterator(chunk_size=BATCH):
        if not isinstance(extra_data, dict):
            continue
        try:
            expires_at = to_datetime(expires_at_of(extra_data))
        except (OverflowError, OSError, ValueError):
            continue  # no representable time: left unknown, as before
        CredentialState.objects.using(alias).update_or_create(
            association_id=pk,
            defaults={"expires_at": expires_at},
            create_defaults={
                "expires_at": expires_at,
                "status": extra_data.get("status") or "active",
            },
        )


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0003_backfill_credential_state"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="credentialevent",
            options={"ordering": ("-created", "-pk")},
        ),
        migrations.AlterField(
            model_name="credentialevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("connected", "Connected"),
                    ("refreshed", "Refreshed"),
                    ("refresh_failed", "Refresh Failed"),
                    ("reauth_required", "Reauth Required"),
                    ("revoked", "Revoked"),
                    ("disconnected", "Disconnected"),
                    ("adopted", "Adopted"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(reindex_psa_expiry, migrations.RunPython.noop, elidable=True),
    ]
