#!/bin/sh
# Start Asterisk with the secrets from the environment (docker/.env), never from git:
# writes manager_secret.conf, pjsip_secrets.conf and pjsip_nat.conf next to the sample
# configs (they #include them), then runs Asterisk in the foreground.
set -eu

die() { echo "asterisk: $*" >&2; exit 1; }

[ -n "${CALLCENTER_AMI__SECRET:-}" ] || die "set CALLCENTER_AMI__SECRET in docker/.env"
[ -n "${DESK_PHONE_2001_PASSWORD:-}" ] || die "set DESK_PHONE_2001_PASSWORD in docker/.env"
[ -n "${DESK_PHONE_2002_PASSWORD:-}" ] || die "set DESK_PHONE_2002_PASSWORD in docker/.env"

umask 077
cd /etc/asterisk

printf 'secret = %s\n' "${CALLCENTER_AMI__SECRET}" > manager_secret.conf

{
    for phone in 2001 2002; do
        eval "password=\${DESK_PHONE_${phone}_PASSWORD}"
        printf '[%s-auth]\ntype = auth\nauth_type = userpass\nusername = %s\npassword = %s\n\n' \
            "${phone}" "${phone}" "${password}"
    done
} > pjsip_secrets.conf

if [ -n "${ASTERISK_EXTERNAL_IP:-}" ]; then
    printf 'external_media_address = %s\nexternal_signaling_address = %s\n' \
        "${ASTERISK_EXTERNAL_IP}" "${ASTERISK_EXTERNAL_IP}" > pjsip_nat.conf
else
    : > pjsip_nat.conf
fi

exec /usr/sbin/asterisk -f -vvv -T -W -U asterisk
