#!/bin/sh
# The Kafka credentials of docker-compose.yml's `ha` profile, written into DIR (default
# .ha-secrets, git- and docker-ignored). Run by `make ha-secrets`.
#
# DIR is mode 0700, so no other user of this host reaches the files. The files themselves are
# 0644: compose mounts each one into a container whose user (uid 1000 in apache/kafka, 10001
# in the ledger's image) is not the files' owner, and a bind-mounted file bypasses DIR.
#
# Every password is 40 random characters from [A-Za-z0-9] (about 238 bits) read from
# /dev/urandom. A password file that exists is kept (rerunning never locks a running cluster
# out); the brokers' JAAS file and the two client configurations are rewritten from them.
#
#   kafka-broker.password    brokers and controllers to each other (PLAIN, super user)
#   kafka-admin.password     the kafka-init-ha job that creates the users and ACLs (PLAIN, super user)
#   kafka-ledger-*.password  the ledger's principals (SCRAM-SHA-512): init, api, projector,
#                            webhooks, operator
#   kafka_server_jaas.conf   the brokers' PLAIN users and their own login (KAFKA_OPTS)
#   kafka-broker.properties  client configuration of the brokers' healthcheck
#   kafka-admin.properties   client configuration of kafka-init-ha
set -eu

dir=${1:-.ha-secrets}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

password() {
    file="$dir/$1"
    if [ ! -s "$file" ]; then
        LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 >"$file.new"
        mv "$file.new" "$file"
    fi
    chmod 644 "$file"
}

for name in broker admin ledger-init ledger-api ledger-projector ledger-webhooks \
    ledger-operator; do
    password "kafka-$name.password"
done

broker=$(cat "$dir/kafka-broker.password")
admin=$(cat "$dir/kafka-admin.password")
plain="org.apache.kafka.common.security.plain.PlainLoginModule required"

cat >"$dir/kafka_server_jaas.conf.new" <<JAAS
controller.KafkaServer {
  $plain
  username="broker" password="$broker"
  user_broker="$broker";
};
internal.KafkaServer {
  $plain
  username="broker" password="$broker"
  user_broker="$broker"
  user_admin="$admin";
};
client.KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS

client_config() {
    cat >"$dir/$1.new" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=$plain username="$2" password="$3";
PROPERTIES
}
client_config kafka-broker.properties broker "$broker"
client_config kafka-admin.properties admin "$admin"

for file in kafka_server_jaas.conf kafka-broker.properties kafka-admin.properties; do
    mv "$dir/$file.new" "$dir/$file"
    chmod 644 "$dir/$file"
done
echo "Kafka credentials of the ha profile are in $dir"
