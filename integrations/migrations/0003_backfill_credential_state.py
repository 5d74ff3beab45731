"""Give every association written before CredentialState existed its indexed state row, so
the background refresh (which selects through that index) sees them too.

Reversing is a no-op: the rows are a derived copy, and 0002's reversal drops the table.
"""

from datetime import datetime, timezone

from django.db import migrations

BATCH = 500


def _at(epoch):
    if epoch in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(float(epoch)), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def state_for(association_id, extra_data):
    """The CredentialState fields that extra_data implies (the token store's mapping)."""
    data = extra_data if isinstance(extra_data, dict) else {}
    return {
        "association_id": association_id,
        "expires_at": _at(data.get("expires_at")),
        "status": data.get("status") or "active",
        "last_refreshed_at": _at(data.get("refreshed_at")),
    }


def backfill(apps, schema_editor):
    UserSocialAuth = apps.get_model("social_django", "UserSocialAuth")
    CredentialState = apps.get_model("integrations", "CredentialState")
    alias = schema_editor.connection.alias
    missing = (
        UserSocialAuth.objects.using(alias)
        .filter(credential_state__isnull=True)
        .order_by("pk")
        .values_list("pk", "extra_data")
    )
    batch = []
    for pk, extra_data in missing.iterator(chunk_size=BATCH):
        batch.append(CredentialState(**state_for(pk, extra_data)))
        if len(batch) >= BATCH:
            CredentialState.objects.using(alias).bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        CredentialState.objects.using(alias).bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0002_credential_state_and_events"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
