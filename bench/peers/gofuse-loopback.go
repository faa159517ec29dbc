// gofuse-loopback: go-fuse's own loopback filesystem (fs.NewLoopbackRoot) for bench/peers.sh.
//
//	gofuse-loopback [-default_permissions] [-single] SRC MNT
//
// Mounts with mount(2) directly (DirectMount, we are root), entry/attr/negative timeouts 1 s,
// MaxWrite 128 KiB (go-fuse's ceiling, fuse.MAX_KERNEL_WRITE), go-fuse's multi-threaded
// default (a goroutine per request), fsname=gofuse-peer; prints "READY" once serving and
// unmounts on SIGTERM/SIGINT. Built offline against Debian's golang-github-hanwen-go-fuse-dev
// (GOPATH=/usr/share/gocode, GO111MODULE=off).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	dp := flag.Bool("default_permissions", false, "mount with -o default_permissions")
	single := flag.Bool("single", false, "MountOptions.SingleThreaded")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: gofuse-loopback [-default_permissions] [-single] SRC MNT")
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback:", err)
		os.Exit(1)
	}
	sec := time.Second
	opts := &fs.Options{EntryTimeout: &sec, AttrTimeout: &sec, NegativeTimeout: &sec}
	opts.DirectMount = true
	opts.FsName = "gofuse-peer"
	opts.Name = "gofuse"
	opts.MaxWrite = fuse.MAX_KERNEL_WRITE
	opts.SingleThreaded = *single
	if *dp {
		opts.Options = append(opts.Options, "default_permissions")
	}
	server, err := fs.Mount(flag.Arg(1), root, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		if err := server.Unmount(); err != nil {
			fmt.Fprintln(os.Stderr, "unmount:", err)
			os.Exit(1)
		}
	}()
	server.Wait()
}
