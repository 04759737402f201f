// Package oci is the registry client layer that Berth's registry plugins
// share (REPLICATION today; GARBAGE_COLLECTION and IMAGE_SCAN next). It is
// no part of the sdk: Go's internal rule keeps it to the plugins under
// plugins/, and nothing promises its API to a job author.
//
// It owns, and keeps small:
//
//   - Registry and Credential, a registry as Harbor's job parameters
//     describe it (type, url, credential{type, access_key,
//     access_secret}, insecure), and Registry.Check, which refuses at
//     submission what no run could use, naming the parameter;
//   - ValidRepository, ValidTag and ValidDigest: the distribution spec's
//     grammar of names, tags and digests;
//   - Dial, which makes a Client of a Registry: the authenticator of its
//     credential (user and password for "basic" and "oauth", as Harbor's
//     adapters read both; Harbor's "Harbor-Secret" header for "secret"; a
//     Bearer challenge of the
//     registry, Harbor's token service among them, is answered by
//     go-containerregistry's transport), an HTTP transport guarded by
//     sdk/egress with the TLS check skipped only when insecure, and a
//     first authenticated call that tells a refused credential
//     (ErrAuth) from an unreachable registry;
//   - Client.Options, the go-containerregistry remote options of every
//     call, and Client.Transport, an authenticated RoundTripper for the
//     calls that package does not make (chunked uploads, mounts);
//   - redaction: every error a Client returns passes Redact, which
//     replaces the credential's secret (as given and as a Basic header
//     carries it) with "***", so that no secret reaches a job's log, its
//     stats or the host's log through an error.
//
// The distribution protocol itself (manifests, indexes, blobs, tokens) is
// go-containerregistry's; this package only puts it together the way
// Harbor's parameters ask.
package oci
