from django.db import migrations, models
from django.db.models import Q

# The claim's indexes differ by database, so migrations own them rather than
# Job.Meta, where Django would warn on MySQL (models.W037) about conditions it
# ignores there.
#
# PostgreSQL and SQLite keep the partial indexes 0001 made: only claimable
# rows, in claim order. MySQL and MariaDB have no partial indexes: 0001 made
# them there without their conditions, holding failed and running rows too, so
# a claim would walk past every one of them. There they are replaced by indexes
# led by the columns that make a row claimable (equal to '' and NULL in every
# claim), then the claim order: a claim reads them in order and stops at the
# first due row it can lock, however many failed or running rows the table
# holds. (MariaDB before 10.8 ignores DESC and sorts: correct, slower with a
# large backlog.) The index on locked_at stays on every database: locked_at
# is NULL on every row that is not running.
CLAIMABLE = Q(failed_at__isnull=True, locked_by="")
PARTIAL = [
    models.Index(
        fields=["queue", "-priority", "run_at", "id"],
        condition=CLAIMABLE,
        name="attachments_job_claimable",
    ),
    models.Index(
        fields=["-priority", "run_at", "id"],
        condition=CLAIMABLE,
        name="attachments_job_any_queue",
    ),
]
LOCKED = models.Index(
    fields=["locked_at"], condition=~Q(locked_by=""), name="attachments_job_locked"
)
MYSQL = [
    models.Index(
        fields=["locked_by", "failed_at", "queue", "-priority", "run_at", "id"],
        name="attachments_job_claim_mysql",
    ),
    models.Index(
        fields=["locked_by", "failed_at", "-priority", "run_at", "id"],
        name="attachments_job_any_mysql",
    ),
]


def _swap(schema_editor, job, old, new):
    if schema_editor.connection.vendor == "mysql":
        for index in old:
            schema_editor.remove_index(job, index)
        for index in new:
            schema_editor.add_index(job, index)


def forwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("attachments", "Job"), PARTIAL, MYSQL)


def backwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("attachments", "Job"), MYSQL, PARTIAL)


class Migration(migrations.Migration):
    dependencies = [("attachments", "0003_job_autovacuum")]

    operations = [
        migrations.SeparateDatabaseAndState(
            # Not atomic: MySQL cannot roll DDL back, so Django refuses DDL in a transaction.
            database_operations=[
                migrations.RunPython(forwards, backwards, atomic=False, elidable=False)
            ],
            state_operations=[
                migrations.RemoveIndex("job", index.name) for index in [*PARTIAL, LOCKED]
            ],
        )
    ]
