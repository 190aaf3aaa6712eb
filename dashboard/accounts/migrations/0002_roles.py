"""The two roles as groups: every user is in one of them (`ascep users create --role`)."""
from django.db import migrations

ROLES = ("viewer", "editor")  # as dashboard.accounts.roles.ROLES when this was written; migrations stay frozen


def add_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(add_roles, remove_roles)]
