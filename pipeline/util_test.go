package pipeline_test

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func testutilValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
