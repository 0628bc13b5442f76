"""A baseline for the ingest benchmark, mounted only when BENCH_ENDPOINTS is on.

It does the least an endpoint can do with a delivery: insert one row. The real endpoint's
throughput is reported as a share of this one's, measured in the same server and run.
"""

import uuid

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery


@csrf_exempt
@require_POST
def baseline_insert(request):
    WebhookDelivery.objects.create(
        source=DeliverySource.PARTNER,
        dedupe_key=f"baseline:{uuid.uuid4().hex}",
        body=request.body.decode("utf-8", "replace"),
        status=DeliveryStatus.IGNORED,
    )
    return HttpResponse(status=202)
