// Command local-volumes is the test ground's volume provisioner for its real
// nodes: a StorageClass with volumeBindingMode WaitForFirstConsumer names it,
// the scheduler picks the node of the pod, and this makes a directory for the
// claim under ROOT/<node>/ and a `local` PersistentVolume bound to that node
// (so the pod always comes back to its data, and kubelet applies the pod's
// fsGroup as it would on a real disk). When a released volume's reclaim
// policy is Delete, the directory goes too. All nodes of the test ground run
// on this machine, so the directories are made here, not through a helper pod.
//
//	local-volumes --kubeconfig KUBECONFIG --root DIR [--name videocounter.io/node-local]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v11/controller"
)

type localVolumes struct{ root string }

// dir is where the volume of `pv` lives on `node`.
func (l localVolumes) dir(node, pv string) string { return filepath.Join(l.root, node, pv) }

func (l localVolumes) Provision(ctx context.Context, o controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	if o.SelectedNode == nil {
		return nil, controller.ProvisioningFinished, errors.New("no node selected: the StorageClass needs volumeBindingMode: WaitForFirstConsumer")
	}
	node := o.SelectedNode.Name
	dir := l.dir(node, o.PVName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, controller.ProvisioningInBackground, fmt.Errorf("making %s: %w", dir, err)
	}
	klog.FromContext(ctx).Info("provisioned", "claim", o.PVC.Namespace+"/"+o.PVC.Name, "node", node, "path", dir)
	mode := v1.PersistentVolumeFilesystem
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.PVName},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: *o.StorageClass.ReclaimPolicy,
			AccessModes:                   o.PVC.Spec.AccessModes,
			VolumeMode:                    &mode,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: o.PVC.Spec.Resources.Requests[v1.ResourceStorage]},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				Local: &v1.LocalVolumeSource{Path: dir},
			},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
					Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{node},
				}}}},
			}},
		},
	}, controller.ProvisioningFinished, nil
}

func (l localVolumes) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	if pv.Spec.Local == nil {
		return &controller.IgnoredError{Reason: "not a local volume"}
	}
	dir := filepath.Clean(pv.Spec.Local.Path)
	if !strings.HasPrefix(dir, filepath.Clean(l.root)+string(filepath.Separator)) {
		return &controller.IgnoredError{Reason: fmt.Sprintf("%s is outside %s", dir, l.root)}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	klog.FromContext(ctx).Info("deleted", "volume", pv.Name, "path", dir)
	return nil
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	root := flag.String("root", "", "directory holding one folder per node with the volumes")
	name := flag.String("name", "videocounter.io/node-local", "provisioner name the StorageClass refers to")
	klog.InitFlags(nil)
	flag.Parse()
	if *root == "" {
		fmt.Fprintln(os.Stderr, "local-volumes: --root is required")
		os.Exit(2)
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig %s: %v", *kubeconfig, err)
	}
	client := kubernetes.NewForConfigOrDie(config)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	controller.NewProvisionController(ctx, client, *name, localVolumes{root: *root},
		controller.LeaderElection(false),
	).Run(ctx)
}
