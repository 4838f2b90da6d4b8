#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tshark's own IPVS dissector reads what lbd's sync encoder writes: sync_pcap_writer puts
# lbd-encoded v1 (IPv4, IPv6, template, fwmark, SCTP, full NAT with lbd's option, SEQ_DATA) and
# v0 messages in a pcap and prints each entry's fields; tshark -d udp.port==8848,ipvs decodes
# the pcap and the fields it shows must be the same, entry for entry. Needs tshark (Debian's);
# skipped (77) without it, a failure under CI=true.
set -euo pipefail
writer=${1:?usage: sync_tshark_test.sh PATH/TO/sync_pcap_writer}
if ! command -v tshark >/dev/null 2>&1; then
  if [[ ${CI:-} == true ]]; then
    echo "FAIL: tshark missing (apt-get install tshark)" >&2
    exit 1
  fi
  echo "SKIP: tshark missing" >&2
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$writer" "$dir/sync.pcap" >"$dir/expected.txt"
tshark -n -r "$dir/sync.pcap" -d udp.port==8848,ipvs -T pdml 2>/dev/null >"$dir/pdml.xml"
python3 - "$dir/pdml.xml" >"$dir/actual.txt" <<'PY'
import sys
import xml.etree.ElementTree as ET

def num(v):
    return int(v, 0)

root = ET.parse(sys.argv[1]).getroot()
for pkt in root.iter('packet'):
    for proto in pkt.iter('proto'):
        if proto.get('name') != 'ipvs':
            continue
        version = 1 if any(f.get('name') == 'ipvs.version' for f in proto) else 0
        for conn in proto:
            if not (conn.get('show') or '').startswith('Connection #'):
                continue
            f = {}
            for e in conn.iter('field'):
                if e.get('name'):
                    f.setdefault(e.get('name'), e.get('show'))
            if version == 1:
                six = '6' if 'ipvs.caddr6' in f else ''
                print('v1 type=%d proto=%d cport=%s vport=%s dport=%s fwmark=%d timeout=%s '
                      'caddr=%s vaddr=%s daddr=%s flags=0x%08x state=%d' % (
                          num(f['ipvs.type']), num(f['ipvs.proto']), f['ipvs.cport'],
                          f['ipvs.vport'], f['ipvs.dport'], num(f['ipvs.fwmark']),
                          f['ipvs.timeout'], f['ipvs.caddr' + six], f['ipvs.vaddr' + six],
                          f['ipvs.daddr' + six], num(f['ipvs.flags.v1']), num(f['ipvs.state'])))
            else:
                print('v0 proto=%d cport=%s vport=%s dport=%s caddr=%s vaddr=%s daddr=%s '
                      'flags=0x%04x state=%d' % (
                          num(f['ipvs.proto']), f['ipvs.cport'], f['ipvs.vport'], f['ipvs.dport'],
                          f['ipvs.caddr'], f['ipvs.vaddr'], f['ipvs.daddr'],
                          num(f['ipvs.flags']), num(f['ipvs.state'])))
PY
n=$(wc -l <"$dir/expected.txt")
if ! diff -u "$dir/expected.txt" "$dir/actual.txt"; then
  echo "FAIL: tshark's IPVS dissector shows other fields than lbd encoded (above)" >&2
  exit 1
fi
if (( n < 10 )); then
  echo "FAIL: only $n entries compared" >&2
  exit 1
fi
echo "PASS: $n sync entries decoded by $(tshark -v 2>/dev/null | head -1 | cut -d' ' -f1-3) as encoded"
