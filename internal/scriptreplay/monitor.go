package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// call is one captured EVALSHA or FCALL: its KEYS and ARGV.
type call struct {
	keys []string
	args []string
}

// readCalls reads the EVALSHA and FCALL commands of a `redis-cli monitor`
// capture, in order (the daemon calls its ingestion scripts with FCALL
// where Redis has Functions). Other commands (those a script calls, shown after it) are
// skipped, and so is a line cut short where the capture was stopped.
func readCalls(r io.Reader) ([]call, error) {
	var calls []call
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		words, ok := monitorWords(sc.Text())
		if !ok || len(words) < 3 || !isScriptCall(words[0]) {
			continue
		}
		n, err := strconv.Atoi(words[2])
		if err != nil || n < 0 || 3+n > len(words) {
			continue
		}
		calls = append(calls, call{keys: words[3 : 3+n], args: words[3+n:]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read monitor capture: %w", err)
	}
	return calls, nil
}

// monitorWords splits one MONITOR line, `<time> [<db> <client>] "word"
// "word"...`, into its words, undoing the escapes MONITOR writes (\", \\,
// \n, \r, \t, \a, \b, \xHH). ok is false for a line that is not a whole
// command.
func monitorWords(line string) (words []string, ok bool) {
	i := strings.Index(line, "] ")
	if i < 0 {
		return nil, false
	}
	s := line[i+2:]
	for s != "" {
		if s[0] == ' ' {
			s = s[1:]
			continue
		}
		if s[0] != '"' {
			return nil, false
		}
		var b strings.Builder
		j := 1
		for ; j < len(s) && s[j] != '"'; j++ {
			c := s[j]
			if c != '\\' {
				b.WriteByte(c)
				continue
			}
			if j+1 >= len(s) {
				return nil, false
			}
			j++
			switch s[j] {
			case 'x':
				if j+2 >= len(s) {
					return nil, false
				}
				v, err := strconv.ParseUint(s[j+1:j+3], 16, 8)
				if err != nil {
					return nil, false
				}
				b.WriteByte(byte(v))
				j += 2
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			default:
				b.WriteByte(s[j])
			}
		}
		if j >= len(s) {
			return nil, false // no closing quote: the line was cut
		}
		words = append(words, b.String())
		s = s[j+1:]
	}
	return words, true
}

// isScriptCall reports a command that runs a script: EVALSHA or FCALL.
func isScriptCall(cmd string) bool {
	return strings.EqualFold(cmd, "evalsha") || strings.EqualFold(cmd, "fcall")
}
