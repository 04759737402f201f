package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// Submit a job, wait for its end and read its log.
func Example() {
	c, err := client.New("http://localhost:9444", "berth-dev-secret")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.Submit(ctx, client.RequestJob{
		Name:       "DEMO",
		Parameters: client.Parameters{"image": "demo", "hold_seconds": 1},
		Metadata:   &client.Metadata{Kind: client.Generic},
	})
	if err != nil {
		panic(err)
	}
	st, err = c.Wait(ctx, st.ID, client.Ended)
	if err != nil {
		panic(err)
	}
	log, _ := c.Log(ctx, st.ID)
	fmt.Printf("%s ended %s\n%s", st.ID, st.Status, log)
}

// Print the API's own JSON of a job, as berthctl -o json does.
func ExampleWithAnswerHook() {
	var last *client.Answer
	c, err := client.New("http://localhost:9444", "berth-dev-secret",
		client.WithAnswerHook(func(a *client.Answer) { last = a }))
	if err != nil {
		panic(err)
	}
	if _, err := c.Get(context.Background(), "0123456789abcdef01234567"); err != nil {
		fmt.Println(err)
	}
	if last != nil {
		fmt.Printf("%s %s: %d %s\n", last.Method, last.Path, last.Status, last.Body)
	}
}
