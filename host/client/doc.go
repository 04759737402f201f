// Package client is the Go client of Berth's REST API (Harbor's job
// service API, plus Berth's extensions) and the API's wire types: the
// stats of a job, statuses, kinds, submissions, actions, worker pools,
// status hook events and error bodies.
//
// berthctl (host/cmd/berthctl), the dashboard's tests and any Go program
// that drives a Berth (or a Harbor job service) use it:
//
//	c, err := client.New("http://localhost:9444", secret)
//	st, err := c.Submit(ctx, client.RequestJob{Name: "DEMO", Parameters: client.Parameters{"image": "demo"},
//		Metadata: &client.Metadata{Kind: client.Generic}})
//	st, err = c.Wait(ctx, st.ID, client.Ended)
//
// The types are the host's own (the host's job model aliases them), so the
// JSON they read and write is exactly the JSON the host speaks. Errors
// from the API are *APIError values; errors.Is matches them against
// ErrNotFound, ErrBadRequest, ErrUnauthorized, ErrConflict and
// ErrStatusMismatch. WithAnswerHook shows each answer as it came, before
// it is decoded (berthctl -o json prints them).
//
// It talks HTTP only: it never reads Redis and imports nothing of the
// host's internals.
package client
