// Command testcluster is Shoal's test control plane in one binary: kube-apiserver,
// kube-controller-manager, kube-scheduler, kubectl and an embedded etcd, chosen by the
// first argument (or by the name the binary is invoked under, so a symlink named
// "kubectl" behaves as kubectl). One binary means the long link step is paid once.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as in the upstream mains.

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `usage: testcluster <command> [flags]

commands:
  etcd                 embedded etcd (--data-dir, --client-port, --peer-port)
  kube-apiserver       upstream kube-apiserver
  kube-controller-manager
  kube-scheduler
  kubectl
  version
`

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "testcluster" || name == "testcluster.exe" {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	// cobra reads os.Args[1:], so present each component with its own argv.
	os.Args = append([]string{name}, args...)
	os.Exit(run(name, args))
}

func run(name string, args []string) int {
	switch name {
	case "etcd":
		return runEtcd(args)
	case "kube-apiserver":
		return cli.Run(apiserver.NewAPIServerCommand())
	case "kube-controller-manager":
		return cli.Run(controllermanager.NewControllerManagerCommand())
	case "kube-scheduler":
		return cli.Run(scheduler.NewSchedulerCommand())
	case "kubectl":
		_, _ = logs.GlogSetter(kubectl.GetLogVerbosity(os.Args))
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	case "version":
		fmt.Println(kubernetesVersion)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", name, usage)
		return 2
	}
}
