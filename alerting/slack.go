package alerting

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// slackSink posts to a Slack incoming webhook: one message per group, a
// headline and one line per alert (at most slackMaxLines).
type slackSink struct {
	url     string
	channel string
	client  *http.Client
}

const slackMaxLines = 20

// SlackMessage is the incoming-webhook payload.
type SlackMessage struct {
	Channel     string            `json:"channel,omitempty"`
	Text        string            `json:"text"`
	Attachments []SlackAttachment `json:"attachments,omitempty"`
}

// SlackAttachment is a coloured block of a Slack message.
type SlackAttachment struct {
	Color    string   `json:"color"`
	Text     string   `json:"text"`
	MrkdwnIn []string `json:"mrkdwn_in"`
}

// Send implements Sink.
func (s *slackSink) Send(ctx context.Context, alerts ...Alert) (bool, error) {
	body, err := marshalJSON(slackMessage(s.channel, alerts))
	if err != nil {
		return false, fmt.Errorf("encode slack message: %w", err)
	}
	return postJSON(ctx, s.client, s.url, nil, body)
}

func slackMessage(channel string, alerts []Alert) SlackMessage {
	first := alerts[0]
	color := map[State]string{StateExceeded: "danger", StateNear: "warning", StateResolved: "good"}[first.State]
	head := fmt.Sprintf("*[%s] %s*: %d key(s)", strings.ToUpper(string(first.State)), first.Rule, len(alerts))
	if first.Repeat > 0 {
		head += " (still active)"
	}
	var lines []string
	for i, a := range alerts {
		if i == slackMaxLines {
			lines = append(lines, fmt.Sprintf("…and %d more", len(alerts)-slackMaxLines))
			break
		}
		line := fmt.Sprintf("• `%s` count %d / limit %d per %s, since %s", a.Key, a.Count, a.Limit,
			time.Duration(a.Window), a.Since.Format(time.RFC3339))
		if !a.Flag.Until.IsZero() {
			line += fmt.Sprintf(", %s flag until %s", a.Flag.Kind, a.Flag.Until.Format(time.RFC3339))
		}
		if a.Link != "" {
			line += fmt.Sprintf(" <%s|details>", a.Link)
		}
		lines = append(lines, line)
	}
	return SlackMessage{
		Channel: channel, Text: head,
		Attachments: []SlackAttachment{{Color: color, Text: strings.Join(lines, "\n"), MrkdwnIn: []string{"text"}}},
	}
}
