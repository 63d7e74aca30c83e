// Command leaky is the test bundle of the registry and secret tests: run
// as its bundle's "marker" command it prints the file /marker, which
// tells one image's content from another's; as "leak" it prints its
// secret SECRET_TOKEN every way a command might give one away: split
// across two writes far enough apart to land in two chunks, straddling
// the 16 KiB chunk boundary, base64-encoded, URL-encoded, and on stderr.
package main

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	switch os.Getenv("COG_COMMAND") {
	case "marker":
		b, err := os.ReadFile("/marker")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("marker %s\n", strings.TrimSpace(string(b)))
	case "leak":
		secret := os.Getenv("SECRET_TOKEN")
		half := len(secret) / 2
		fmt.Print("split: " + secret[:half])
		os.Stdout.Sync()
		time.Sleep(300 * time.Millisecond) // past the chunker's 50 ms flush
		fmt.Println(secret[half:])
		// The value across the 16 KiB boundary of a chunk.
		fmt.Print(strings.Repeat("x", 16<<10-len("straddle: ")-half-2) + "\nstraddle: " + secret + "\n")
		fmt.Println("base64: " + base64.StdEncoding.EncodeToString([]byte(secret)))
		fmt.Println("basic: " + base64.StdEncoding.EncodeToString([]byte("user:"+secret)))
		fmt.Println("url: https://example.invalid/?token=" + url.QueryEscape(secret))
		fmt.Fprintln(os.Stderr, "stderr: "+secret)
	default:
		fmt.Fprintln(os.Stderr, "run as the leaky bundle's marker or leak command")
		os.Exit(2)
	}
}
