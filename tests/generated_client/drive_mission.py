"""Drives one mission through AURA with a client generated from
openapi/openapi.json by openapi-python-client: a tenant and its
governance, a mission that policy escalates, an approver's vote, the
built-in executor calling a tool, and the audit export. Every request
and every typed answer goes through the generated code; the document is
usable if this runs.

Usage: AURA_PLATFORM_KEY=... drive_mission.py BASE_URL EXPORT_FILE
Prints the tenant's public key (for `aura audit verify --key`).
"""

import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aura_api_client import AuthenticatedClient
from aura_api_client.api.agents import agents_register
from aura_api_client.api.api_keys import keys_create
from aura_api_client.api.approvals import approvals_decide, approvals_inbox
from aura_api_client.api.audit import audit_export, audit_sign_checkpoint
from aura_api_client.api.directory import directory_create_user
from aura_api_client.api.missions import missions_create, missions_get
from aura_api_client.api.namespaces import namespaces_create
from aura_api_client.api.policy import (
    policy_get_authority,
    policy_get_policy,
    policy_get_routing,
    policy_put_authority,
    policy_put_routing,
    policy_set_stable,
    policy_upload,
)
from aura_api_client.api.tenants import tenants_create
from aura_api_client.api.tools import tools_put
from aura_api_client.models import (
    AuthorityConfig,
    CreateKey,
    CreateMission,
    CreateNamespace,
    CreateTenant,
    CreateUser,
    Decide,
    MissionState,
    Problem,
    RegisterAgent,
    RoutingTable,
    SetStable,
    ToolSpec,
    UploadBundle,
)

POLICIES = """
@id("agents-may-use-tools")
permit(principal, action in [Aura::Action::"plan_step", Aura::Action::"call_tool"], resource);

@id("payments-over-1000-need-an-approver") @escalate @level("2")
forbid(principal, action in [Aura::Action::"plan_step", Aura::Action::"call_tool"], resource)
when { context.arguments has amount && context.arguments.amount > 1000 };
"""


def expect(response, status):
    """The typed answer of a response with the expected status."""
    if response.status_code != status:
        sys.exit(f"expected {status}, got {response.status_code}: {response.content!r}")
    assert not isinstance(response.parsed, Problem), response.parsed
    return response.parsed


class Tool(BaseHTTPRequestHandler):
    """The ERP the mission posts to: records each call, answers 200."""

    calls = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Tool.calls.append(body)
        answer = json.dumps({"posted": body["arguments"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def main():
    base, export_path = sys.argv[1:3]
    platform_key = os.environ["AURA_PLATFORM_KEY"]
    tool = ThreadingHTTPServer(("127.0.0.1", 0), Tool)
    threading.Thread(target=tool.serve_forever, daemon=True).start()
    tool_url = f"http://127.0.0.1:{tool.server_address[1]}/post"

    def client(key):
        return AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)

    platform = client(platform_key)
    created = expect(
        tenants_create.sync_detailed(
            client=platform, body=CreateTenant.from_dict({"id": "acme", "display_name": "Acme"})
        ),
        201,
    )
    admin = client(created.admin_key.key)
    t = "acme"
    expect(
        namespaces_create.sync_detailed(
            t, client=admin, body=CreateNamespace.from_dict({"id": "payments", "display_name": "Payments"})
        ),
        201,
    )
    expect(
        directory_create_user.sync_detailed(
            t,
            client=admin,
            body=CreateUser.from_dict({"id": "ann", "user_name": "ann", "display_name": "Ann"}),
        ),
        201,
    )
    ann_key = expect(
        keys_create.sync_detailed(
            t,
            client=admin,
            body=CreateKey.from_dict({"name": "ann approves", "user_id": "ann", "roles": ["approver"]}),
        ),
        201,
    )
    ann = client(ann_key.key)

    public = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    expect(
        agents_register.sync_detailed(
            t,
            client=admin,
            body=RegisterAgent.from_dict(
                {"id": "payer-bot", "org_unit": "finance-ops", "public_key": base64.b64encode(public).decode()}
            ),
        ),
        201,
    )
    spec = {
        "risk": "L2",
        "classification": "internal",
        "target": "on-prem",
        "invocation": {
            "endpoint": tool_url,
            "input_schema": {"type": "object", "properties": {"amount": {"type": "integer"}}},
            "timeout_ms": 5000,
        },
    }
    expect(tools_put.sync_detailed(t, "erp.post", client=admin, body=ToolSpec.from_dict(spec)), 200)

    bundle = expect(policy_upload.sync_detailed(t, client=admin, body=UploadBundle.from_dict({"policies": POLICIES})), 201)
    ns = "payments"
    etag = policy_get_policy.sync_detailed(t, ns, client=admin).headers["etag"]
    expect(
        policy_set_stable.sync_detailed(
            t, ns, client=admin, body=SetStable.from_dict({"version": bundle.version}), if_match=etag
        ),
        200,
    )
    authority = {
        "graph": {"users": {"ann": "L2"}},
        "rules": {
            "min_level": "L1",
            "quorum": 1,
            "separation_of_duties": True,
            "deadline": 3_600_000,
            "at_deadline": "reject",
        },
    }
    etag = policy_get_authority.sync_detailed(t, ns, client=admin).headers["etag"]
    set_authority = policy_put_authority.sync_detailed(
        t, ns, client=admin, body=AuthorityConfig.from_dict(authority), if_match=etag
    )
    assert expect(set_authority, 200).rules.quorum == 1
    etag = policy_get_routing.sync_detailed(t, ns, client=admin).headers["etag"]
    routing = RoutingTable.from_dict({"internal": ["on-prem"]})
    expect(policy_put_routing.sync_detailed(t, ns, client=admin, body=routing, if_match=etag), 200)

    mission = {
        "id": "invoice-7",
        "namespace": ns,
        "agent": "payer-bot",
        "definition": {"objective": "pay invoice 7", "tools": ["erp.post"], "authority": "L2", "timeout": 600_000},
        "context": {
            "inputs": {"amount": 5000},
            "classification": "internal",
            "labels": {"aura.executor": "builtin"},
        },
    }
    expect(missions_create.sync_detailed(t, client=admin, body=CreateMission.from_dict(mission)), 201)

    def state():
        return expect(missions_get.sync_detailed(t, "invoice-7", client=admin), 200)

    def wait_for(done, what):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = state()
            if done(m):
                return m
            time.sleep(0.1)
        sys.exit(f"the mission never {what}: {m.to_dict()}")

    # The executor plans it; policy escalates the payment to an L2 approver.
    wait_for(lambda m: m.state == MissionState.WAITING_APPROVAL, "waited for approval")
    assert not Tool.calls, "nothing is paid before the approval"
    inbox = expect(approvals_inbox.sync_detailed(t, client=ann), 200)
    assert [p.mission.id for p in inbox] == ["invoice-7"], [p.to_dict() for p in inbox]
    assert inbox[0].required_level == "L2"
    vote = Decide.from_dict({"approve": True, "reason": "invoice checked"})
    expect(approvals_decide.sync_detailed(t, "invoice-7", client=ann, body=vote), 200)

    closed = wait_for(lambda m: m.state == MissionState.CLOSED, "closed")
    outcome = closed.outcome.to_dict()
    assert outcome["outcome"]["kind"] == "succeeded", outcome
    assert [c["arguments"] for c in Tool.calls] == [{"amount": 5000}], Tool.calls

    # A checkpoint over the whole chain, so the export verifies to its end.
    checkpoint = expect(audit_sign_checkpoint.sync_detailed(t, client=admin), 201)
    assert checkpoint.size >= 18, checkpoint.to_dict()
    export = expect(audit_export.sync_detailed(t, client=admin), 200)
    with open(export_path, "wb") as f:
        f.write(export)
    print(created.tenant.public_key)


if __name__ == "__main__":
    main()
