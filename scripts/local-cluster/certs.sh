# shellcheck shell=bash disable=SC2164 # cd: the entry runs with set -e
# The cluster's certificates and keys: the CA, serving and client certificates, the service-account key, the
# kubeconfigs made from them, and the backup store's CA and root key.
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

# One CA; serving certificates for the API server and the kubelet; client certificates for the admin (also used
# by the controllers, as kwokctl and kind's single-node setups do) and for the node (system:node:<name>, so the
# Node authorizer applies); a service-account signing key.
cert() { # cert NAME SUBJECT EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%b\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
gen_pki() {
  [[ -f "$PKI/.complete" ]] && return 0
  mkdir -p "$PKI" && chmod 700 "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stateful-flask-local-ca" -keyout ca.key -out ca.crt 2>/dev/null
    local server='extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment'
    local client='extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment'
    cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n$server"
    cert kubelet-server "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME\n$server"
    cert admin "/O=system:masters/CN=local-cluster-admin" "$client"
    cert node "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ca.srl
  )
  touch "$PKI/.complete"
}

# The backup store's CA, its certificate (for the Service's names; pgBackRest 2.45 matches no IP addresses) and its
# root key, kept beside the volumes with the store's data, so backups and the means to read them outlive the
# cluster as the volumes do.
gen_backup_store() {
  mkdir -p "$BACKUP_STORE/data/$BACKUP_BUCKET"
  chown -R 65532:65532 "$BACKUP_STORE/data"
  [[ -f "$BACKUP_STORE/.complete" ]] && return 0
  (
    cd "$BACKUP_STORE"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stateful-flask-local-backup-store-ca" -keyout ca.key -out ca.crt 2>/dev/null
    cert tls "/CN=s3.backup-store.svc.cluster.local" \
      'subjectAltName=DNS:s3.backup-store.svc.cluster.local,DNS:s3.backup-store.svc\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment'
    rm -f ca.srl
    # No trailing newline: the Secret made from these files gives versitygw its root key verbatim (and the stack
    # reads them as its backup key, scripts/local/driver.ts).
    openssl rand -hex 10 | tr a-f A-F | tr -d '\n' >access-key
    openssl rand -hex 20 | tr -d '\n' >secret-key
    chmod 644 ca.crt
  )
  touch "$BACKUP_STORE/.complete"
}

kubeconfig_for() { # kubeconfig_for FILE CERT
  local kc="$1"
  rm -f "$kc"
  "$BIN/kubectl" config --kubeconfig "$kc" set-cluster local --server "https://$NODE_IP:$APISERVER_PORT" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" set-credentials "$2" --client-certificate "$PKI/$2.crt" \
    --client-key "$PKI/$2.key" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" set-context local --cluster local --user "$2" >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" use-context local >/dev/null
  chmod 600 "$kc"
}
