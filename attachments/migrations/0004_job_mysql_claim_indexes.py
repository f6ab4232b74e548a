from django.db import migrations, models

# MySQL and MariaDB have no partial indexes: there Django creates 0001's claim
# indexes without their conditions (models.W037), so they hold failed and
# running rows too, and a claim would walk past every one of them. These lead
# with the columns that make a row claimable (equal to '' and NULL in every
# claim), then the claim order: a claim reads them in order and stops at the
# first due row it can lock, however many failed or running rows the table
# holds. Other databases keep their partial indexes and get nothing here.
# (MariaDB before 10.8 ignores DESC and sorts instead: correct, slower with a
# large backlog.)
INDEXES = [
    models.Index(
        fields=["locked_by", "failed_at", "queue", "-priority", "run_at", "id"],
        name="attachments_job_claim_mysql",
    ),
    models.Index(
        fields=["locked_by", "failed_at", "-priority", "run_at", "id"],
        name="attachments_job_any_mysql",
    ),
]


def add(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        job = apps.get_model("attachments", "Job")
        for index in INDEXES:
            schema_editor.add_index(job, index)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        job = apps.get_model("attachments", "Job")
        for index in INDEXES:
            schema_editor.remove_index(job, index)


class Migration(migrations.Migration):
    dependencies = [("attachments", "0003_job_autovacuum")]

    # Not atomic: MySQL cannot roll DDL back, so Django refuses DDL in a transaction.
    operations = [migrations.RunPython(add, remove, atomic=False, elidable=False)]
