from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from attachments import stats
from attachments.admin import error_line, thumbnail
from attachments.models import Job, WorkerStat
from demo_site.models import Item
from tests import images

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/attachments/job/"
RETRY_FAILED = "/admin/attachments/job/retry-failed/"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "attachments/processing.py", line 1, in process\n'
    "OSError: <b>storage</b> unavailable"
)
_ids = itertools.count(1)


def make_job(state: str = "waiting", queue: str = "default", **fields: object) -> Job:
    now = timezone.now()
    columns = {
        "waiting": {},
        "scheduled": {"run_at": now + timedelta(hours=1)},
        "retrying": {"run_at": now + timedelta(hours=1), "attempts": 2, "last_error": TRACEBACK},
        "running": {"locked_by": "host:7:cafe", "locked_at": now - timedelta(seconds=42)},
        "failed": {"failed_at": now, "attempts": 10, "last_error": TRACEBACK},
    }[state]
    n = next(_ids)
    defaults = {
        "target": "demo_site.item.image",
        "object_id": str(n),
        "source": f"items/{n}/a.jpg",
        "queue": queue,
    }
    return Job.objects.create(**{**defaults, **columns, **fields})


def failed_item() -> tuple[Item, Job]:
    """A record whose job failed for good, as the worker leaves them."""
    item = Item.objects.create(title="x", image="items/x/a.jpg", image_state="failed")
    return item, make_job("failed", object_id=str(item.pk), source="items/x/a.jpg")


@pytest.fixture
def staff(django_user_model):
    """Log ``client`` in as a staff user with the given permissions on jobs."""

    def login(client: Client, *perms: str) -> None:
        user = django_user_model.objects.create_user(
            username=f"staff{next(_ids)}", password="x", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="attachments", codename__in=[f"{p}_job" for p in perms]
            )
        )
        client.force_login(user)

    return login


def act(client: Client, action: str, *jobs: Job, **kwargs: object):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [job.pk for job in jobs], "index": 0},
        **kwargs,
    )


# Permissions


@pytest.mark.parametrize("url", [CHANGELIST, RETRY_FAILED, f"{CHANGELIST}1/change/"])
def test_anonymous_is_sent_to_the_login(client, url):
    make_job()
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_non_staff_is_sent_to_the_login(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="u", password="x"))
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(
    ("perms", "changelist", "retry_all"),
    [
        ((), 403, 403),
        (("view",), 200, 403),
        (("view", "delete"), 200, 403),
        (("view", "change"), 200, 302),
    ],
)
def test_permissions(client, staff, perms, changelist, retry_all):
    job = make_job("failed")
    staff(client, *perms)
    assert client.get(CHANGELIST).status_code == changelist
    assert client.post(RETRY_FAILED).status_code == retry_all
    job.refresh_from_db()
    assert (job.failed_at is None) == (retry_all == 302)


def test_view_permission_shows_the_dashboard_but_no_way_to_change_it(client, staff):
    job = make_job("failed")
    staff(client, "view")
    page = client.get(CHANGELIST).content.decode()
    assert "Throughput" in page
    assert "retry-failed" not in page
    assert 'name="action"' not in page
    act(client, "retry_now", job)
    act(client, "discard", job)
    job.refresh_from_db()
    assert job.failed_at is not None
    assert client.get(f"{CHANGELIST}{job.pk}/delete/").status_code == 403


def test_actions_follow_change_and_delete_permissions(client, staff):
    retried, discarded = make_job("failed"), make_job("failed")
    staff(client, "view", "change")
    act(client, "discard", discarded)
    act(client, "retry_now", retried)
    assert Job.objects.get(pk=retried.pk).failed_at is None
    assert Job.objects.filter(pk=discarded.pk).exists()
    staff(client, "view", "delete")
    act(client, "discard", discarded)
    assert not Job.objects.filter(pk=discarded.pk).exists()


def test_jobs_cannot_be_added_or_edited(admin_client):
    job = make_job("failed")
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    response = admin_client.post(f"{CHANGELIST}{job.pk}/change/", {"queue": "other"})
    assert response.status_code == 403
    page = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert 'name="queue"' not in page
    assert 'name="_save"' not in page


# The change view


def test_change_view_shows_the_traceback_escaped_in_pre(admin_client):
    job = make_job("failed")
    page = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert re.search(
        r'<pre class="job-traceback">Traceback \(most recent call last\):\n.*\n'
        r"OSError: &lt;b&gt;storage&lt;/b&gt; unavailable</pre>",
        page,
    )
    assert "<b>storage</b>" not in page


def test_change_view_shows_missing_values_as_empty(admin_client):
    page = admin_client.get(f"{CHANGELIST}{make_job().pk}/change/").content.decode()
    assert '<div class="readonly">None</div>' not in page
    assert page.count('<div class="readonly">-</div>') == 4  # previous, worker, failed at, error


def test_change_view_offers_retry_unless_running(admin_client):
    _, job = failed_item()
    page = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert 'value="retry_now"' in page
    running = make_job("running")
    page = admin_client.get(f"{CHANGELIST}{running.pk}/change/").content.decode()
    assert 'value="retry_now"' not in page
    assert f"{running.pk}/delete/" not in page


def test_deleting_from_the_change_view_discards_and_spares_running_jobs(admin_client):
    waiting, running = make_job(), make_job("running")
    response = admin_client.post(f"{CHANGELIST}{running.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    admin_client.post(f"{CHANGELIST}{waiting.pk}/delete/", {"post": "yes"})
    assert list(Job.objects.all()) == [running]


# Actions


def test_retry_now_makes_a_failed_job_due_and_its_record_processing(admin_client):
    item, job = failed_item()
    running = make_job("running")
    page = act(admin_client, "retry_now", job, running, follow=True).content.decode()
    assert "Queued 1 job again." in page
    assert "Skipped 1 running job" in page
    job.refresh_from_db()
    item.refresh_from_db()
    assert (job.failed_at, job.attempts, job.state) == (None, 0, "waiting")
    assert item.image_state == "processing"
    assert Job.objects.get(pk=running.pk).locked_by


def test_retry_now_leaves_a_job_alone_that_was_claimed_meanwhile(admin_client):
    item = Item.objects.create(title="x", image="items/x/a.jpg", image_state="ready")
    job = make_job(object_id=str(item.pk), source="items/x/a.jpg")
    Job.objects.filter(pk=job.pk).update(locked_by="w", locked_at=timezone.now())
    act(admin_client, "retry_now", job)
    item.refresh_from_db()
    assert item.image_state == "ready"


def test_discard_deletes_all_but_running_jobs(admin_client):
    failed, waiting, running = make_job("failed"), make_job(), make_job("running")
    page = act(admin_client, "discard", failed, waiting, running, follow=True).content.decode()
    assert "Discarded 2 jobs." in page
    assert "Skipped 1 running job" in page
    assert list(Job.objects.all()) == [running]


def test_discarding_a_waiting_job_shows_its_record_failed(admin_client):
    # Left processing, the record would show a placeholder for good.
    item = Item.objects.create(title="x", image="items/x/a.jpg", image_state="processing")
    job = make_job(object_id=str(item.pk), source="items/x/a.jpg")
    act(admin_client, "discard", job)
    item.refresh_from_db()
    assert item.image_state == "failed"
    assert not Job.objects.exists()


def test_delete_selected_is_replaced_by_discard(admin_client):
    make_job()
    page = admin_client.get(CHANGELIST).content.decode()
    assert 'value="discard"' in page
    assert 'value="delete_selected"' not in page


def test_retry_all_failed_is_post_only_and_retries_every_failed_job(admin_client):
    item, _ = failed_item()
    make_job("failed", queue="slow")
    waiting = make_job()
    assert admin_client.get(RETRY_FAILED).status_code == 405
    assert Job.objects.failed().count() == 2
    response = admin_client.post(RETRY_FAILED, follow=True)
    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert "Queued 2 jobs again." in response.content.decode()
    assert not Job.objects.failed().exists()
    assert Job.objects.get(pk=waiting.pk).run_at == waiting.run_at
    item.refresh_from_db()
    assert item.image_state == "processing"


def test_retry_all_failed_needs_the_csrf_token(django_user_model):
    make_job("failed")
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "x"))
    assert client.post(RETRY_FAILED).status_code == 403
    page = client.get(CHANGELIST).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    assert client.post(RETRY_FAILED, {"csrfmiddlewaretoken": token}).status_code == 302
    assert not Job.objects.failed().exists()


def test_retry_all_button_only_when_something_failed(admin_client):
    assert "retry-failed" not in admin_client.get(CHANGELIST).content.decode()
    make_job("failed")
    assert "Retry 1 failed job" in admin_client.get(CHANGELIST).content.decode()


# The list


def test_list_columns(admin_client):
    item, _ = failed_item()
    make_job("running", attempts=1)
    page = admin_client.get(CHANGELIST).content.decode()
    link = f'<a href="/admin/demo_site/item/{item.pk}/change/">demo_site.item.image #{item.pk}'
    assert link in page
    assert "host:7:cafe (42 s)" in page
    assert "1/10" in page
    assert "OSError: &lt;b&gt;storage&lt;/b&gt; unavailable" in page
    assert "Traceback (most recent" not in page.split('id="result_list"')[1]


@pytest.mark.parametrize("state", stats.STATES)
def test_state_filter(admin_client, state):
    jobs = {s: make_job(s) for s in stats.STATES}
    response = admin_client.get(CHANGELIST, {"state": state})
    assert [job.pk for job in response.context["cl"].result_list] == [jobs[state].pk]


def test_queue_filter_and_search(admin_client):
    slow, fast = make_job(queue="slow"), make_job(queue="fast")
    response = admin_client.get(CHANGELIST, {"queue": "slow"})
    assert list(response.context["cl"].result_list) == [slow]
    response = admin_client.get(CHANGELIST, {"q": fast.object_id})
    assert list(response.context["cl"].result_list) == [fast]
    response = admin_client.get(CHANGELIST, {"q": f"items/{slow.object_id}/"})
    assert list(response.context["cl"].result_list) == [slow]


def test_auto_refresh_is_not_taken_for_a_lookup(admin_client):
    job = make_job("failed")
    response = admin_client.get(CHANGELIST, {"state": "failed", "_refresh": "5"})
    assert response.status_code == 200  # not a redirect to ?e=1
    assert list(response.context["cl"].result_list) == [job]
    page = response.content.decode()
    assert '<meta http-equiv="refresh" content="5">' in page
    assert '<a href="?state=failed">Stop auto-refresh</a>' in page
    page = admin_client.get(CHANGELIST, {"state": "failed"}).content.decode()
    assert "http-equiv" not in page
    assert '<a href="?state=failed&amp;_refresh=5">Auto-refresh every 5 s</a>' in page


# The summary


def test_summary_counts_per_queue_and_state(admin_client):
    for state, queue, n in [
        ("waiting", "default", 3),
        ("scheduled", "default", 1),
        ("retrying", "slow", 2),
        ("running", "default", 1),
        ("failed", "slow", 4),
    ]:
        for _ in range(n):
            make_job(state, queue=queue)
    summary = admin_client.get(CHANGELIST).context["summary"]
    assert summary["queues"] == [
        (
            "default",
            [
                (3, "?queue=default&state=waiting"),
                (1, "?queue=default&state=scheduled"),
                (0, "?queue=default&state=retrying"),
                (1, "?queue=default&state=running"),
                (0, "?queue=default&state=failed"),
            ],
        ),
        (
            "slow",
            [
                (0, "?queue=slow&state=waiting"),
                (0, "?queue=slow&state=scheduled"),
                (2, "?queue=slow&state=retrying"),
                (0, "?queue=slow&state=running"),
                (4, "?queue=slow&state=failed"),
            ],
        ),
    ]
    assert [count for count, _ in summary["totals"]] == [3, 1, 2, 1, 4]
    assert [(job.locked_by, age) for job, age in summary["running"]] == [("host:7:cafe", "42 s")]
    assert len(summary["failures"]) == 4
    assert summary["failures"][0][1] == "OSError: <b>storage</b> unavailable"


def test_summary_shows_throughput_summed_across_workers(admin_client):
    minute = datetime.fromtimestamp(timezone.now().timestamp() // 60 * 60, tz=UTC)
    WorkerStat.objects.create(worker="a", minute=minute, processed=7, failed=1)
    WorkerStat.objects.create(worker="b", minute=minute, processed=5, failed=2)
    response = admin_client.get(CHANGELIST)
    last = response.context["summary"]["throughput"].minutes[-1]
    assert (last.processed, last.failed) == (12, 3)
    assert '<meter min="0" max="12" value="12">' in response.content.decode()


def test_dashboard_queries_do_not_grow_with_the_jobs(admin_client, django_assert_max_num_queries):
    for state in stats.STATES:
        make_job(state)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(CHANGELIST)
    for queue, state, _ in itertools.product(["a", "b", "c"], stats.STATES, range(5)):
        make_job(state, queue=queue)
    WorkerStat.objects.create(worker="w", minute=timezone.now(), processed=1)
    with django_assert_max_num_queries(len(few)):
        response = admin_client.get(CHANGELIST)
    assert response.context["cl"].result_count == 80
    # Session and user, then the list (2 counts, a page, the queue filter's
    # values) and the summary (counts, throughput, running, failures).
    assert len(few) <= 10


# The thumbnail column


def test_thumbnail_shows_the_placeholder_then_the_smallest_style(admin_client):
    item = Item(title="x")
    item.image.save("a.png", ContentFile(images.png((40, 30))))
    column = thumbnail("image", size=40)
    assert column.short_description == "image"
    html = column(item)
    assert 'src="/static/attachments/processing.svg"' in html
    assert "max-width:40px" in html
    item.image_state = "ready"
    assert f'src="{item.image.styles["thumb"].url}"' in column(item)
    assert f'src="{item.image.styles["square"].url}"' in thumbnail("image", "square")(item)
    assert column(Item(title="empty")) is None


def test_demo_admin_lists_thumbnails(admin_client):
    item = Item(title="x")
    item.image.save("a.png", ContentFile(images.png((40, 30))))
    page = admin_client.get("/admin/demo_site/item/").content.decode()
    assert 'src="/static/attachments/processing.svg"' in page


def test_error_line_is_the_exception_not_the_traceback_header():
    assert error_line(TRACEBACK) == "OSError: <b>storage</b> unavailable"
    assert error_line("ValueError: x\n\n") == "ValueError: x"
    assert error_line("") == ""


def test_urls_are_named():
    assert reverse("admin:attachments_job_retry_failed") == RETRY_FAILED
