package ztrace

import (
	"fmt"
	"os"
	"time"
)

var on = os.Getenv("LOGBOOK_ZTRACE") != ""

func T(what, id string) {
	if on {
		fmt.Fprintf(os.Stderr, "ZTRACE %d %d %s %s\n", time.Now().UnixMicro(), os.Getpid(), what, id)
	}
}
