package job

// Paging defaults and bounds of the listing endpoints.
const (
	DefaultPageSize = 25
	MaxPageSize     = 1000
)

// Query selects a page of a listing.
type Query struct {
	// PageNumber counts from 1.
	PageNumber int
	PageSize   int
	// Kind, when KindScheduled, lists the jobs waiting for their run time;
	// when Periodic, the active policies; when Generic, the Generic jobs.
	Kind Kind
	// Status and Name, when set, list only the jobs in that status or of
	// that name (not with Kind Scheduled or Periodic).
	Status Status
	Name   string
	// Cursor continues a listing where the previous page's NextCursor
	// left it ("" or "0" starts from the beginning).
	Cursor string
	// NonDeadOnly lists only the executions that have not ended.
	NonDeadOnly bool
}

// Page is one page of a listing.
type Page struct {
	Jobs []*Stats
	// Total is the number of jobs in the whole listing; negative when it
	// is not known (a cursor listing).
	Total int64
	// NextCursor continues the listing; "0" when it is done.
	NextCursor string
}
