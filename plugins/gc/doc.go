// Command gc is the GARBAGE_COLLECTION job plugin: a mark and sweep of a
// CNCF distribution registry's storage, which gets the disk space of
// deleted and overwritten images back.
//
// The job reads the storage through distribution's storage driver
// interface (registry/storage/driver, with its filesystem driver) and the
// registry's documented layout below docker/registry/v2: blobs/, and per
// repository _manifests/revisions, _manifests/tags/<tag>/current and
// index, and _layers. Only the driver is built from the parameters, so
// another driver (S3, GCS, Azure) needs no change below it.
//
// Mark: from every manifest a tag points at (with delete_untagged false,
// from every manifest revision of every repository), and from every
// manifest revision newer than the time window, it marks the manifest, its
// config and layers and, for an index or manifest list, its children,
// following each child that is a revision of the same repository. Sweep:
// every manifest revision not marked (with the tag index entries that name
// it), then every layer link, then every blob whose digest is not marked,
// in that order so that no link is left naming a deleted blob. A blob,
// layer link or manifest written within time_window hours is kept, and so
// is a blob a recent link names: an image being pushed is never
// collected. Uploads in progress (_uploads) are left alone. With
// time_window 0 it deletes exactly what distribution v3's
// storage.MarkAndSweep deletes (the tests check it), and unlike Debian's
// distribution 2.8 collector it keeps the children of a tagged index.
//
// Parameters are Harbor's (delete_untagged, default true; dry_run;
// workers, 1 to 10; time_window, hours, default 2; redis_url_reg,
// accepted and unused) and Berth's: storage_root, or registry_config (a
// registry config file whose storage.filesystem.rootdirectory is
// collected), and registry_url, optional: the registry must answer GET
// /v2/ before the collection, and every tag must resolve and validate
// (ggcr's validate, fast) after it.
//
// The job checks in {"phase","done","total"} (phases scan, mark, sweep,
// verify) and ends with Harbor's result {"freed_space","purged_blobs",
// "purged_manifests"} as its last check-in, in its log and as its output;
// a dry run reports what a run would free and deletes nothing. Each
// deletion (or, on a dry run, each eligible item) is a line of the job's
// log. A stop or cancel is honoured before every delete, and a stopped
// sweep leaves every tag served. One collection runs at a time across all
// hosts (MaxConcurrency 1); a failed one is not retried (MaxFails 1).
//
// Settings (plugin_config.gc in the host's configuration):
//
//	registries          [{url, username, password}]: logins for the
//	                    registry_url checks; otherwise the host's Docker
//	                    config (DOCKER_CONFIG), or anonymous
//	deletes_per_second  bound on the sweep's deletes, for backends that
//	                    limit their request rate (0: none)
//
// Nothing keeps a client from pushing during the sweep: a push that
// reuses a blob no tag reached, without uploading it again, can lose it.
// Put the registry in read-only mode for a collection that must be exact
// under load, as distribution's own collector asks. It imports sdk and
// its field's libraries, never the host.
package main
