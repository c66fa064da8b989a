"""The hub's HTTP API: the unified resident record for the portal and other services.

    app.py               the application factory: routes, error handlers, the OpenAPI document
    context.py           what every request shares: project, store, authenticator, the
                         audit writer and the prepared read
    settings.py          hub.yaml `api:` read into plain data (keys, clients), positioned errors
    auth.py              bearer JWTs and API keys -> a Caller with scopes -> an audited Reader
    responses.py         JSON responses with every national id masked
    models.py            the request and response shapes (what the OpenAPI document shows)
    routes_residents.py  read by id, find by national id (POST), activities
    fastpath.py          GET /residents/{id} answered before FastAPI's routing (else passed on)
    reads.py             the by-id read, prepared on the driver (held equal to residents.show)
    audit.py             group commit of audit rows: no response before its row is committed
    activities.py        a resident's bookings, cases, signups across the islands
    routes_gdpr.py       the GDPR API of Helsinki's open-city-profile (GET tree, DELETE dry_run)
    gdpr_tree.py         the subject access export as the profile's key/children tree
    routes_status.py     run status, data-quality summaries, health
    command.py           the `islandhub api` command (light: no FastAPI import)
    serve.py             uvicorn with masked logs; the OpenAPI document as text

Nothing here imports FastAPI at package import: `islandhub.cli` wires the `api` command in
without paying for it on every other command.
"""
