package jobs

import "fmt"

// harborJob is what Berth does with one of the job types Harbor core
// submits (the names Harbor's job service registers).
type harborJob struct {
	// plugin is the Berth plugin that serves it ("" when none does).
	plugin string
	// why a type that no plugin serves is not served, or how a served
	// one differs from Harbor's.
	note string
}

// harborJobs lists Harbor's job types, for the README's table and for a
// clear answer to a submission of one that no plugin serves. A plugin of
// the operator's that serves one of these names takes precedence.
var harborJobs = map[string]harborJob{
	"DEMO":                      {"demo", ""},
	"SCHEDULER":                 {"scheduler", ""},
	"WEBHOOK":                   {"webhook", ""},
	"SLACK":                     {"slack", ""},
	"REPLICATION":               {"replication", "runs standalone against the source and destination registries given in its parameters, not Harbor's policy tables"},
	"GARBAGE_COLLECTION":        {"gc", "runs standalone against a registry's storage, not against Harbor's trash tables"},
	"IMAGE_SCAN":                {"scan", "runs standalone against a Pluggable Scanner adapter, not writing Harbor's report tables"},
	"RETENTION":                 {"", "it applies tag retention rules stored in Harbor's database"},
	"PURGE_AUDIT_LOG":           {"", "it deletes rows of Harbor's audit log table"},
	"AUDIT_LOGS_GDPR_COMPLIANT": {"", "it rewrites rows of Harbor's audit log table"},
	"EXECUTION_SWEEP":           {"", "it deletes execution records from Harbor's database"},
	"P2P_PREHEAT":               {"", "it reads preheat policies and instances from Harbor's database"},
	"SCAN_DATA_EXPORT":          {"", "it exports scan reports from Harbor's database"},
	"SYSTEM_ARTIFACT_CLEANUP":   {"", "it cleans Harbor's system artifact table"},
	"SCAN_ALL":                  {"", "it walks the artifacts in Harbor's database"},
	"SBOM":                      {"", "it stores SBOM accessories through Harbor's database"},
	"TEAMS":                     {"", "not yet: a Microsoft Teams webhook plugin would serve it as SLACK does"},
	"IMAGE_REPLICATE":           {"", "Harbor keeps it only for jobs queued before v2.2"},
	"IMAGE_SCAN_ALL":            {"", "Harbor keeps it only for jobs queued before v2.2"},
	"IMAGE_GC":                  {"", "Harbor keeps it only for jobs queued before v2.2"},
}

// unknownJob is the answer to a submission of a name no plugin serves.
func (c *Controller) unknownJob(name string) string {
	if h, ok := harborJobs[name]; ok {
		if h.plugin != "" {
			return fmt.Sprintf("job name %q is Harbor's, served by Berth's %s plugin, which this service did not load (is it in the plugins directory?); this service runs %s",
				name, h.plugin, c.names())
		}
		return fmt.Sprintf("job name %q is one of Harbor's that Berth does not serve: %s; this service runs %s", name, h.note, c.names())
	}
	return fmt.Sprintf("job name %q is unknown: this service runs %s", name, c.names())
}
