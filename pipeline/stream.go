package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamSpec describes the JetStream stream events arrive on and the durable
// consumer every daemon replica shares.
type StreamSpec struct {
	Stream        string
	Subject       string        // e.g. "ratemon.events.>"
	Retention     time.Duration // MaxAge; at least the longest rule retention
	Replicas      int
	Consumer      string
	AckWait       time.Duration
	MaxAckPending int
	// StartBack is how far back a new consumer starts reading, so that the
	// windows are complete from the first evaluation (the longest retention).
	StartBack time.Duration
}

// EnsureStream creates the events stream when it does not exist and raises
// its MaxAge when it is shorter than the spec asks; other settings of an
// existing stream are left to its owner.
func EnsureStream(ctx context.Context, js jetstream.JetStream, spec StreamSpec) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, spec.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if other, err := js.StreamNameBySubject(ctx, spec.Subject); err == nil && other != "" {
			return nil, fmt.Errorf("stream %s does not exist, but stream %s already holds %s: set nats.stream to %s, or delete it", spec.Stream, other, spec.Subject, other)
		}
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        spec.Stream,
			Description: "ratemon request events",
			Subjects:    []string{spec.Subject},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      spec.Retention,
			Storage:     jetstream.FileStorage,
			Replicas:    max(spec.Replicas, 1),
			Duplicates:  2 * time.Minute,
			Discard:     jetstream.DiscardOld,
		})
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", spec.Stream, err)
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("look up stream %s: %w", spec.Stream, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxAge != 0 && cfg.MaxAge < spec.Retention {
		cfg.MaxAge = spec.Retention
		if s, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("raise max age of stream %s to %v: %w", spec.Stream, spec.Retention, err)
		}
	}
	return s, nil
}

// EnsureConsumer returns the shared durable pull consumer, creating it when
// missing. A new consumer starts StartBack ago; an existing one resumes.
func EnsureConsumer(ctx context.Context, s jetstream.Stream, spec StreamSpec) (jetstream.Consumer, error) {
	c, err := s.Consumer(ctx, spec.Consumer)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("look up consumer %s: %w", spec.Consumer, err)
	}
	start := time.Now().Add(-spec.StartBack)
	c, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       spec.Consumer,
		Description:   "ratemon ingestion, shared by every daemon replica",
		FilterSubject: spec.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxAckPending: spec.MaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &start,
		Replicas:      max(spec.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", spec.Consumer, err)
	}
	return c, nil
}

// EnsureDeadLetterStream creates the stream that keeps dead letters, when
// name is not empty and it does not exist.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, name, subject string, maxAge time.Duration, replicas int) error {
	if name == "" {
		return nil
	}
	_, err := js.Stream(ctx, name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up stream %s: %w", name, err)
	}
	if other, err := js.StreamNameBySubject(ctx, subject); err == nil && other != "" {
		return nil // another stream already keeps the dead letters
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "ratemon dead letters: input it could not use, with the reason",
		Subjects:    []string{subject},
		MaxAge:      maxAge,
		MaxBytes:    256 << 20,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}
