// Command replication is the REPLICATION job plugin: Harbor's replication
// job, which copies images between OCI registries, run standalone over
// the distribution API (no Harbor core or database needed).
//
// Parameters are Harbor's: src_resource and dst_resource (each Harbor's
// resource, as the JSON string Harbor's core sends or as an object:
// registry{type, url, credential{type, access_key, access_secret},
// insecure}, metadata{repository{name}, artifacts[{tags, digest}]},
// override), speed (kilobits per second over the whole job; 0, or
// Harbor's -1, is no limit) and copy_by_chunk; and Berth's own chunk_size
// (bytes per chunk, default 10 MiB, 1 KiB to 256 MiB) and filters
// (Harbor-style [{type: name|repository|tag, value: glob, decoration:
// matches|excludes}], used when the source lists no artifacts).
//
// What is copied: each listed tag (source tag → the destination's tag at
// the same position, or the same tag), each listed digest (by digest; a
// digest given with tags pins what those tags get), every tag of the
// repository when no artifact is listed, and every repository of the
// source (through its catalog; the destination's repository name, if
// any, is then a prefix) when no repository is named; filters choose
// among them. Registry types "docker-registry" and "harbor" speak the
// same API; a Bearer challenge (Harbor's token service) is answered with
// the credential.
//
// How: for each artifact, the source's manifest and, for an index, every
// child manifest are read first; then every blob is copied, children
// first, each image's manifest after its blobs, the tag last, so that a
// stopped or failed copy never leaves a tag pointing at an incomplete
// image. A tag whose digest is the source's already is skipped (its
// blobs are reported skipped), a differing one is kept unless override.
// A blob the destination repository has is skipped; one that another
// repository of the destination got in this job is mounted; others are
// uploaded: in one PUT, or with copy_by_chunk in PATCHes with
// Content-Range of chunk_size bytes and a closing PUT. Each blob is tried
// three times with backoff (each chunk too: a chunk the registry did not
// take in is sent again); a failing artifact does not stop the others,
// and the job ends in Error naming each that failed and why (for good
// when every failure is one a retry cannot mend). A refused address
// fails the job at once, for good; a refused credential ends the run at
// once, and the job's runs are retried by its rules (MaxFails 3), as
// Harbor's are.
//
// Progress: a check-in per blob, the JSON
// {"artifact","blob","index","total","bytes","skipped"} (and "mounted"
// when it was), visible in the job's stats and status hook; a log line
// per artifact; the job's output sums it all up.
//
// Stop and cancel end the run within a second, between blobs or inside an
// upload (the rate limiter and the request both end with the context).
// Credentials never appear in the job's log, check-ins, errors or output:
// errors pass plugins/internal/oci's redaction.
//
// Settings (plugin_config.replication in the host's configuration):
//
//	allowed_networks   networks (CIDR) or IPs of registries that may be
//	                   called although refused by default (loopback,
//	                   private, link-local...), e.g. ["10.0.0.0/8"]
//
// Harbor's registry clients live in plugins/internal/oci, the guard in
// sdk/egress. The plugin imports the sdk, those and go-containerregistry,
// never the host.
package main
