// Command iop plans, deploys and runs CNN inference cooperatively across
// several edge devices, and runs it on one device. Run `iop --help`.
package main

import (
	"os"

	"github.com/iop-edge/iop/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
