#!/usr/bin/env python3
"""Prints the ratios of the load benchmark's results (target/bench/load.txt, key=value lines
written by benches/load.sh), every run and the mean, and renders them as SVG bar charts under
docs/img/. No third-party packages.

    python3 benches/report.py [target/bench/load.txt]
"""
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench/load.txt")
vals = {}
for line in src.read_text().splitlines():
    if "=" in line and not line.startswith("#"):
        k, v = line.split("=", 1)
        try:
            vals[k.strip()] = float(v.split()[0])
        except ValueError:
            pass


def bars(name, title, unit, items, goal=None):
    items = [(label, vals[key]) for label, key in items if key in vals]
    if not items:
        return
    w, bar_h, gap, left = 640, 28, 12, 190
    h = 50 + len(items) * (bar_h + gap) + 20
    top = max(v for _, v in items + ([("goal", goal)] if goal else []))
    scale = (w - left - 90) / top if top else 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
           f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>']
    for i, (label, v) in enumerate(items):
        y = 40 + i * (bar_h + gap)
        out.append(f'<text x="10" y="{y + 19}">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1, v * scale):.1f}" height="{bar_h}" fill="#3b82f6"/>')
        out.append(f'<text x="{left + v * scale + 6:.1f}" y="{y + 19}">{v:g} {unit}</text>')
    if goal:
        x = left + goal * scale
        out.append(f'<line x1="{x:.1f}" y1="34" x2="{x:.1f}" y2="{h - 10}" stroke="#dc2626" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x + 4:.1f}" y="{h - 12}" fill="#dc2626">goal {goal:g}</text>')
    out.append("</svg>")
    path = Path("docs/img") / f"{name}.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


def runs(key):
    return [vals[f"{key}_{r}"] for r in range(1, 10) if f"{key}_{r}" in vals]


# The ratios, each run against its baseline in the same run.
print("ratios (gateway ÷ baseline, same run; runs, then mean):")
for label, key in [
    ("S1  small keep-alive GETs ÷ nginx", "gateway_over_nginx"),
    ("S1  small keep-alive GETs ÷ HAProxy", "gateway_over_haproxy"),
    ("S2a CheckFileInfo ÷ bare wopi-crate verifier (wrk -t2, 3,000 proofs)", "s2a_checkfileinfo_over_bare_verify"),
    ("S2b CheckFileInfo ÷ bare hyper+ring (wrk -t1, 8,000 proofs)", "s2b_checkfileinfo_over_bare_ring"),
    ("S2c as S2b, the gateway at its default log level (info)", "s2c_checkfileinfo_info_log_over_bare_ring"),
    ("S7  WebSocket echo ÷ nginx", "ws_gateway_over_nginx"),
]:
    rs = runs(key) or ([vals[key]] if key in vals else [])
    if rs:
        print(f"  {label}: {' / '.join(f'{r:g}' for r in rs)}   mean {sum(rs) / len(rs):.2f}")
for label, key in [("S2a", "s2a"), ("S2b", "s2b"), ("S2c", "s2c")]:
    b, g = runs(f"{key}_cpu_us_per_request_bare"), runs(f"{key}_cpu_us_per_request_gateway")
    if b and g:
        print(f"  {label} server CPU per request, bare ÷ gateway: "
              + " / ".join(f"{x / y:.2f} ({x:g}/{y:g} µs)" for x, y in zip(b, g)))
for label, key in [
    ("S3  10k idle connections, all sent first, MiB above idle: gateway proxied", "gateway_rss_10k_sent_first"),
    ("S3  … the gateway's own route", "gateway_rss_10k_sent_first_own_route"),
    ("S3  … nginx's workers", "nginx_rss_10k_sent_first"),
]:
    if f"{key}_mib" in vals:
        print(f"  {label}: {vals[key + '_mib']:g} (peak {vals.get(key + '_peak_mib', float('nan')):g}, closed {vals.get(key + '_closed', 0):g})")

# Rows run three times (S1, S2): the charts show the first run, the doc all three.
for k in list(vals):
    if k.endswith("_1"):
        vals.setdefault(k[:-2], vals[k])

bars("proxy_rps", "Small GETs with keep-alive (requests/s, same run)", "req/s",
     [("direct (bare hyper)", "direct_rps"), ("nginx", "nginx_rps"), ("HAProxy", "haproxy_rps"),
      ("wopi-gateway", "gateway_rps")])
bars("ratios", "Ratios against the same-run baseline", "×",
     [("gateway ÷ nginx", "gateway_over_nginx"), ("gateway ÷ HAProxy", "gateway_over_haproxy"),
      ("CheckFileInfo ÷ bare verify (S2a)", "s2a_checkfileinfo_over_bare_verify"),
      ("CheckFileInfo ÷ hyper+ring (S2b)", "s2b_checkfileinfo_over_bare_ring"),
      ("1 GiB download ÷ direct", "download_gateway_over_direct"),
      ("1 GiB download ÷ nginx", "download_gateway_over_nginx"), ("GetFile 1 GiB ÷ direct", "getfile_over_direct"),
      ("PutFile 1 GiB ÷ copy+fsync", "putfile_over_direct_copy"), ("GetFile 1 GiB ÷ dd read", "getfile_over_dd_read"),
      ("PutFile 1 GiB ÷ dd write+fsync", "putfile_over_dd_write_fsync"), ("WebSocket echo ÷ nginx", "ws_gateway_over_nginx")])
bars("memory", "Memory (MiB)", "MiB",
     [("gateway RSS idle", "gateway_rss_before_idle_mib"),
      ("10k idle conns, sent first, growth: gateway (proxied)", "gateway_rss_10k_sent_first_mib"),
      ("… nginx", "nginx_rss_10k_sent_first_mib"),
      ("… gateway's own route (hyper)", "gateway_rss_10k_sent_first_own_route_mib"),
      ("peak growth, 1 GiB download", "gateway_peak_rss_growth_mib")])
