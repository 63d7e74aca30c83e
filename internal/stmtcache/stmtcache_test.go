package stmtcache

import (
	"slices"
	"testing"
)

func TestShapesCoverEveryRowWithFewSizes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		n, max int
		want   []int
	}{
		{0, 10, nil},
		{1, 10, []int{1}},
		{7, 10, []int{4, 2, 1}},
		{10, 10, []int{10}},
		{25, 10, []int{10, 10, 4, 1}},
		{3, 1, []int{1, 1, 1}},
		{5, 0, []int{1, 1, 1, 1, 1}},
	}
	for _, c := range cases {
		if got := Shapes(c.n, c.max); !slices.Equal(got, c.want) {
			t.Errorf("Shapes(%d, %d) = %v, want %v", c.n, c.max, got, c.want)
		}
	}
	// Every n up to 1000 is covered exactly, with sizes from max and the
	// powers of two below it.
	allowed := map[int]bool{90: true, 64: true, 32: true, 16: true, 8: true, 4: true, 2: true, 1: true}
	for n := range 1000 {
		sum := 0
		for _, s := range Shapes(n, 90) {
			if !allowed[s] {
				t.Fatalf("Shapes(%d, 90) uses size %d", n, s)
			}
			sum += s
		}
		if sum != n {
			t.Fatalf("Shapes(%d, 90) covers %d rows", n, sum)
		}
	}
}
