package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/host/client"
)

// pageSize is the page size berthctl asks for when it walks a listing by
// page numbers and none was given: the API's default.
const pageSize = 25

// defaultMaxPages bounds --all.
const defaultMaxPages = 100

func (a *app) getCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a job's stats",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return remote(err)
			}
			if a.json() {
				return a.printLast()
			}
			return jobDetails(a.stdout, st)
		},
	}
}

// listFlags are the flags of list.
type listFlags struct {
	kind, status, name, cursor string
	page, pageSize, maxPages   int
	all                        bool
}

func (a *app) listCommand() *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Long: `List jobs, newest first.

Without --kind, or with --kind Generic, the listing walks every job, filtered
by --status and --name, and continues with --cursor (the next cursor is shown
on stderr). --kind Scheduled lists the jobs waiting for their run time and
--kind Periodic the active policies, by --page. --all follows the pages to
the end, at most --max-pages of them.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := listOptions(f, cmd.Flags().Changed)
			if err != nil {
				return usage(err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			paged := o.PageNumber > 0
			fetch := func() (*client.Page, error) { return c.List(cmd.Context(), o) }
			next := func(p *client.Page) (string, bool) {
				if paged {
					if !pagedMore(p, o.PageNumber, o.PageSize) {
						return "", false
					}
					o.PageNumber++
					return "--page " + strconv.Itoa(o.PageNumber), true
				}
				if p.NextCursor == "" || p.NextCursor == "0" {
					return "", false
				}
				o.Cursor = p.NextCursor
				return "--cursor " + p.NextCursor, true
			}
			return a.walk("jobs", f.all, f.maxPages, fetch, next)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "kind", "", "Generic (the default), Scheduled (waiting jobs) or Periodic (policies)")
	fl.StringVar(&f.status, "status", "", "only jobs with this status")
	fl.StringVar(&f.name, "name", "", "only jobs of this name")
	fl.StringVar(&f.cursor, "cursor", "", "continue a listing at this cursor")
	fl.IntVar(&f.page, "page", 1, "page number (--kind Scheduled or Periodic)")
	fl.IntVar(&f.pageSize, "page-size", 0, "jobs a page, 1 to 1000 (default: the API's, 25)")
	fl.BoolVar(&f.all, "all", false, "follow the pages to the end")
	fl.IntVar(&f.maxPages, "max-pages", defaultMaxPages, "most pages --all reads")
	must(cmd.RegisterFlagCompletionFunc("kind", kindCompletion))
	must(cmd.RegisterFlagCompletionFunc("status", statusCompletion))
	return cmd
}

// listOptions checks the flags of list and makes its first request.
func listOptions(f listFlags, changed func(string) bool) (client.ListOptions, error) {
	var o client.ListOptions
	if f.kind != "" {
		k, err := parseKind(f.kind)
		if err != nil {
			return o, fmt.Errorf("--kind: %w", err)
		}
		o.Kind = k
	}
	if f.status != "" {
		st, err := parseStatus(f.status)
		if err != nil {
			return o, fmt.Errorf("--status: %w", err)
		}
		o.Status = st
	}
	o.Name = f.name
	if err := checkPaging(f.page, f.pageSize, f.maxPages); err != nil {
		return o, err
	}
	o.PageSize = f.pageSize
	if o.Kind == client.KindScheduled || o.Kind == client.Periodic {
		if o.Status != "" || o.Name != "" {
			return o, fmt.Errorf("--status and --name filter the listing of every job: they do not go with --kind %s", o.Kind)
		}
		if f.cursor != "" {
			return o, fmt.Errorf("--cursor does not go with --kind %s, which pages by --page", o.Kind)
		}
		o.PageNumber = f.page
		if o.PageSize == 0 {
			o.PageSize = pageSize
		}
		return o, nil
	}
	if changed("page") {
		return o, fmt.Errorf("--page is for --kind Scheduled or Periodic; the listing of every job continues with --cursor")
	}
	if f.cursor != "" {
		if _, err := strconv.ParseUint(f.cursor, 10, 64); err != nil {
			return o, fmt.Errorf("--cursor %q: want the digits of a cursor berthctl showed", f.cursor)
		}
	}
	o.Cursor = f.cursor
	return o, nil
}

// checkPaging checks --page, --page-size and --max-pages.
func checkPaging(page, size, maxPages int) error {
	switch {
	case page < 1:
		return fmt.Errorf("--page %d: want 1 or more", page)
	case size < 0 || size > 1000:
		return fmt.Errorf("--page-size %d: want 1 to 1000", size)
	case maxPages < 1:
		return fmt.Errorf("--max-pages %d: want 1 or more", maxPages)
	}
	return nil
}

// pagedMore tells whether a listing by page numbers has pages after page
// number n of size jobs.
func pagedMore(p *client.Page, n, size int) bool {
	if len(p.Jobs) == 0 || p.Total < 0 {
		return false
	}
	return int64(n)*int64(size) < p.Total
}

// walk reads a listing page by page: fetch reads the current page, next
// moves to the one after p and names it ("--page 3"), or says there is
// none. Without all it reads one page and names the next on stderr. It
// prints the jobs, or with -o json the API's answers (one array for all
// the pages).
func (a *app) walk(what string, all bool, maxPages int, fetch func() (*client.Page, error), next func(*client.Page) (string, bool)) error {
	var (
		jobs  []*client.Stats
		items []json.RawMessage
		first []byte // the first page's answer
	)
	for pages := 1; ; pages++ {
		p, err := fetch()
		if err != nil {
			return remote(err)
		}
		jobs = append(jobs, p.Jobs...)
		if a.json() && a.last != nil {
			if pages == 1 {
				first = a.last.Body
			}
			var page []json.RawMessage
			if err := json.Unmarshal(a.last.Body, &page); err != nil {
				return remote(fmt.Errorf("the listing is not a JSON array: %w", err))
			}
			items = append(items, page...)
		}
		hint, more := next(p)
		if !more {
			break
		}
		if !all {
			fmt.Fprintf(a.stderr, "berthctl: more %s: add %s, or --all\n", what, hint)
			break
		}
		if pages >= maxPages {
			fmt.Fprintf(a.stderr, "berthctl: stopped after %d pages (--max-pages); more %s: add %s\n", pages, what, hint)
			break
		}
	}
	if !a.json() {
		return jobRows(a.stdout, jobs)
	}
	if !all {
		return a.printRaw(first)
	}
	out := []byte("[" + string(bytes.Join(rawSlices(items), []byte(","))) + "]")
	return a.printRaw(out)
}

func rawSlices(items []json.RawMessage) [][]byte {
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

func (a *app) executionsCommand() *cobra.Command {
	var (
		page, size, maxPages int
		nonDeadOnly, all     bool
	)
	cmd := &cobra.Command{
		Use:   "executions ID",
		Short: "List the executions of a periodic policy, or the sub-jobs of a job, newest first",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPaging(page, size, maxPages); err != nil {
				return usage(err)
			}
			if size == 0 {
				size = pageSize
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			fetch := func() (*client.Page, error) {
				return c.Executions(cmd.Context(), args[0], page, size, nonDeadOnly)
			}
			next := func(p *client.Page) (string, bool) {
				if !pagedMore(p, page, size) {
					return "", false
				}
				page++
				return "--page " + strconv.Itoa(page), true
			}
			return a.walk("executions", all, maxPages, fetch, next)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&page, "page", 1, "page number")
	fl.IntVar(&size, "page-size", 0, "executions a page, 1 to 1000 (default 25)")
	fl.BoolVar(&nonDeadOnly, "non-dead-only", false, "only the executions that are not final")
	fl.BoolVar(&all, "all", false, "follow the pages to the end")
	fl.IntVar(&maxPages, "max-pages", defaultMaxPages, "most pages --all reads")
	return cmd
}

func (a *app) actionCommand(action client.Action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   string(action) + " ID",
		Short: short,
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.Act(cmd.Context(), args[0], action); err != nil {
				return remote(err)
			}
			if a.json() {
				return nil // 204: the API says nothing
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %s accepted\n", args[0], action)
			return err
		},
	}
}

func (a *app) statsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show the worker pools and their health",
		Long: `Show the worker pools of the hosts and their health (Healthy while a
pool's heartbeat is recent, Dead after). The API answers an error when no
pool is healthy. It needs no secret.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			pools, err := c.WorkerPools(cmd.Context())
			if err != nil {
				return remote(err)
			}
			if a.json() {
				return a.printLast()
			}
			return poolRows(a.stdout, pools)
		},
	}
}

func (a *app) configCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Show the service's Redis configuration",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			cfg, err := c.Config(cmd.Context())
			if err != nil {
				return remote(err)
			}
			if a.json() {
				return a.printLast()
			}
			return configRows(a.stdout, cfg)
		},
	}
}
