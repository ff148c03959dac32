"""PostgreSQL: keep statistics on many more lexemes of the search index.

With the default target (100) the planner guesses a rare word (返品 in 5M messages) is common
and walks every conversation of the workspace newest first, probing the index for each: 2.5 s at
1M conversations. With 1000 it collects the few matches first: 35 ms (bench/inbox_scale.py).
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE inbox_message_search ALTER COLUMN tsv SET STATISTICS 1000")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE inbox_message_search ALTER COLUMN tsv SET STATISTICS -1")


class Migration(migrations.Migration):
    dependencies = [("inbox", "0002_message_search")]
    operations = [migrations.RunPython(forwards, backwards)]
