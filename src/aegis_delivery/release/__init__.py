"""The release side: which commit and tags (context, tags), the images built from it (images),
scanned (trivy, scan_gate) and published (registry, publish), and the release record that
carries all of it to the cluster side (record)."""
