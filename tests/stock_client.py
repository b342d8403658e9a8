#!/usr/bin/env python3
"""A stock gRPC client (grpcio) that knows nothing of warroom but its address.

It discovers the contract through server reflection, then calls Watch (a
snapshot, then one change) and pages through every tenant with ListTenants and
through one tenant's mailboxes with ListMailboxes, decoding with dynamic
message classes built from the reflected descriptors. Prints a summary,
one key=JSON value per line.

Usage: stock_client.py ADDR [CA_PEM [CLIENT_CERT_PEM CLIENT_KEY_PEM]]; with
a CA, over TLS (the gateway's certificate checked against that CA).
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main(addr, ca=None, cert=None, key=None):
    if ca is None:
        channel = grpc.insecure_channel(addr)
    else:
        def read(path):
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_channel_credentials(
            root_certificates=read(ca),
            private_key=read(key) if key else None,
            certificate_chain=read(cert) if cert else None,
        )
        channel = grpc.secure_channel(addr, creds)
    db = ProtoReflectionDescriptorDatabase(channel)
    services = db.get_services()
    pool = descriptor_pool.DescriptorPool(db)
    svc = pool.FindServiceByName("warroom.v1.WarRoom")

    def call(method_name, streaming=False):
        m = svc.methods_by_name[method_name]
        req, resp = GetMessageClass(m.input_type), GetMessageClass(m.output_type)
        path = f"/{svc.full_name}/{m.name}"
        kind = channel.unary_stream if streaming else channel.unary_unary
        return req, kind(path, request_serializer=req.SerializeToString,
                         response_deserializer=resp.FromString)

    req, watch = call("Watch", streaming=True)
    stream = watch(req(), timeout=30)
    first = next(stream)
    second = next(stream)
    stream.cancel()

    req, list_tenants = call("ListTenants")
    ids, token = [], ""
    while True:
        page = list_tenants(req(page_size=50, page_token=token), timeout=30)
        ids += [t.id for t in page.tenants]
        token = page.next_page_token
        if not token:
            break

    req, list_mailboxes = call("ListMailboxes")
    biggest = max(first.tenants, key=lambda t: t.affected)
    addresses, token = [], ""
    while True:
        page = list_mailboxes(req(tenant_id=biggest.id, page_size=100, page_token=token), timeout=30)
        addresses += [m.address for m in page.mailboxes]
        token = page.next_page_token
        if not token:
            break

    summary = {
        "services": services,
        "first_snapshot": first.snapshot,
        "first_version": first.version,
        "second_snapshot": second.snapshot,
        "second_version": second.version,
        "snapshot_tenants": len(first.tenants),
        "listed_tenants": len(ids),
        "unique_tenants": len(set(ids)),
        "tenant": biggest.id,
        "tenant_not_ok": biggest.mailboxes - biggest.states.ok,
        "listed_mailboxes": len(addresses),
        "unique_mailboxes": len(set(addresses)),
    }
    # One "key=value" per line: easy to read from any test harness.
    for k, v in summary.items():
        print(f"{k}={json.dumps(v)}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
