#!/bin/bash
# kafka-init-ha (docker-compose.yml, profile `ha`): the ledger's SCRAM-SHA-512 users and their
# ACLs, created as the `admin` super user over the brokers' INTERNAL listener. The brokers
# authorize with the KRaft StandardAuthorizer and allow.everyone.if.no.acl.found=false, so a
# principal can do only what is granted here (tests/unit/test_compose_ha.py reads these lines).
# Idempotent: users are upserted and adding an ACL that exists changes nothing.
set -euo pipefail

bin=/opt/kafka/bin
admin=(--bootstrap-server kafka-1:9094,kafka-2:9094,kafka-3:9094
       --command-config /run/secrets/kafka-admin.properties)

for user in ledger-init ledger-api ledger-projector ledger-webhooks ledger-operator; do
    password=$(cat "/run/secrets/kafka-$user.password")
    "$bin/kafka-configs.sh" "${admin[@]}" --alter --entity-type users --entity-name "$user" \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
done

acl() { "$bin/kafka-acls.sh" "${admin[@]}" --add "$@"; }

# init: creates the five topics and checks their configuration; reads and writes no record
acl --allow-principal User:ledger-init --operation Create --operation Describe \
    --operation DescribeConfigs --topic consent.events --topic consent.state \
    --topic consent.checks --topic consent.checkpoints --topic consent.deadletter
# api: appends events and contact-check evidence; the only writer of both
acl --allow-principal User:ledger-api --operation Write --topic consent.events \
    --topic consent.checks
# projector: consumes the events in its group; writes the state, checkpoint and dead-letter
# topics, and reads the state topic's high-water marks (a refill after an empty topic)
acl --allow-principal User:ledger-projector --operation Read --topic consent.events
acl --allow-principal User:ledger-projector --operation Read --group consent-ledger-projector
acl --allow-principal User:ledger-projector --operation Write --operation Read \
    --topic consent.state
acl --allow-principal User:ledger-projector --operation Write --topic consent.checkpoints \
    --topic consent.deadletter
# webhooks: the dispatcher consumes the events in its own group (it never commits there: its
# positions are in PostgreSQL) and writes no topic
acl --allow-principal User:ledger-webhooks --operation Read --topic consent.events
acl --allow-principal User:ledger-webhooks --operation Read --group consent-ledger-webhooks
# operator: backup, checkpoint-verify and rebuild read every topic; it writes nothing
acl --allow-principal User:ledger-operator --operation Read --operation DescribeConfigs \
    --topic consent.events --topic consent.state --topic consent.checks \
    --topic consent.checkpoints --topic consent.deadletter

"$bin/kafka-acls.sh" "${admin[@]}" --list
