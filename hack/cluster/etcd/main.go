// Command etcd is the lab's etcd server: etcd's own entry point, built through this module
// because etcd's repository points its modules at each other with local replace directives,
// which `go install go.etcd.io/etcd/server/v3@version` refuses.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
