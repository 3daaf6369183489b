package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/pipeline/event"
)

func publishCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "publish",
		Usage: "publish request events on NATS, from flags or from NDJSON on stdin",
		Description: "Examples:\n" +
			"  ratemon publish --service stocks --client acme --route 'GET /stocks/{symbol}/history' --count 120\n" +
			"  printf '{\"client\":\"acme\",\"service\":\"stocks\"}\\n' | ratemon publish --stdin",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.StringFlag{Name: "service", Value: "default", Usage: "service name: the subject is <prefix>.events.<service>"},
			&cli.StringFlag{Name: "client", Usage: "client id"},
			&cli.StringFlag{Name: "ip", Usage: "client IP"},
			&cli.StringFlag{Name: "route", Usage: "route"},
			&cli.StringFlag{Name: "method", Usage: "HTTP method"},
			&cli.IntFlag{Name: "status", Usage: "HTTP status"},
			&cli.Int64Flag{Name: "weight", Value: 1, Usage: "weight of each event"},
			&cli.StringFlag{Name: "id", Usage: "event id (with --count > 1, suffixed with -<n>)"},
			&cli.Int64Flag{Name: "ts", Usage: "event time, Unix ms (default: the time JetStream stores it)"},
			&cli.BoolFlag{Name: "refused", Usage: "mark the events as refused by the API server"},
			&cli.IntFlag{Name: "count", Value: 1, Usage: "how many events to publish"},
			&cli.BoolFlag{Name: "stdin", Usage: "read events as NDJSON from stdin instead of the flags"},
			&cli.IntFlag{Name: "batch", Value: 100, Usage: "events per NATS message (NDJSON)"},
			&cli.BoolFlag{Name: "core", Usage: "publish with core NATS, without waiting for JetStream to store"},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c, false)
			if err != nil {
				return err
			}
			subjects, err := keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			evs, err := publishEvents(c, s.in)
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			nc, err := daemon.ConnectNATS(cfg.NATS, "ratemon publish", false, slog.New(slog.DiscardHandler))
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			defer nc.Close()
			p := publisher{nc: nc, core: c.Bool("core"), subjects: subjects, batch: max(c.Int("batch"), 1)}
			if !p.core {
				if p.js, err = jetstream.New(nc); err != nil {
					return cli.Exit(err.Error(), 1)
				}
			}
			msgs, err := p.publish(c.Context, evs)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			_, err = fmt.Fprintf(s.out, "published %d events in %d messages\n", len(evs), msgs)
			return err
		},
	}
}

// publishEvents builds the events from the flags or reads them from stdin.
func publishEvents(c *cli.Context, in io.Reader) ([]event.Event, error) {
	lim := event.Limits{}
	if c.Bool("stdin") {
		var evs []event.Event
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			got, rejects := event.DecodeAll(sc.Bytes(), lim)
			if len(rejects) > 0 {
				return nil, fmt.Errorf("stdin line %d: %s: %s", line, rejects[0].Reason, rejects[0].Detail)
			}
			for i := range got {
				if got[i].Service == "" {
					got[i].Service = c.String("service")
				}
			}
			evs = append(evs, got...)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return evs, nil
	}
	e := event.Event{
		Client: c.String("client"), IP: c.String("ip"), Route: c.String("route"), Method: c.String("method"),
		Service: c.String("service"), Status: c.Int("status"), Weight: c.Int64("weight"), TS: c.Int64("ts"),
		Refused: c.Bool("refused"),
	}
	if err := e.Validate(lim); err != nil {
		return nil, fmt.Errorf("event from flags: %w", err)
	}
	n := c.Int("count")
	if n < 1 {
		return nil, fmt.Errorf("--count must be at least 1, got %d", n)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = e
		if id := c.String("id"); id != "" && n > 1 {
			evs[i].ID = fmt.Sprintf("%s-%d", id, i+1)
		} else {
			evs[i].ID = id
		}
	}
	return evs, nil
}

type publisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	core     bool
	subjects keyspace.Subjects
	batch    int
}

// publish sends the events as NDJSON messages of up to p.batch events, one
// subject per service, and waits for JetStream to store each one.
func (p publisher) publish(ctx context.Context, evs []event.Event) (int, error) {
	bySvc := map[string][]event.Event{}
	var order []string
	for _, e := range evs {
		if err := keyspace.ValidateService(e.Service); err != nil {
			return 0, fmt.Errorf("service %q: %w", e.Service, err)
		}
		if _, ok := bySvc[e.Service]; !ok {
			order = append(order, e.Service)
		}
		bySvc[e.Service] = append(bySvc[e.Service], e)
	}
	msgs := 0
	for _, svc := range order {
		list := bySvc[svc]
		for i := 0; i < len(list); i += p.batch {
			var buf []byte
			for _, e := range list[i:min(i+p.batch, len(list))] {
				buf = e.AppendJSON(buf)
				buf = append(buf, '\n')
			}
			subj := p.subjects.Events(svc)
			if p.core {
				if err := p.nc.Publish(subj, buf); err != nil {
					return msgs, fmt.Errorf("publish on %s: %w", subj, err)
				}
			} else {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := p.js.Publish(pctx, subj, buf)
				cancel()
				if err != nil {
					return msgs, fmt.Errorf("publish on %s (is ratemon serve running, so that the stream exists?): %w", subj, err)
				}
			}
			msgs++
		}
	}
	if p.core {
		if err := p.nc.FlushTimeout(5 * time.Second); err != nil {
			return msgs, fmt.Errorf("flush: %w", err)
		}
	}
	return msgs, nil
}
