#!/usr/bin/env bash
# Boots a real systemd as PID 1 of a new PID + mount namespace, for the end-to-end tests.
#
#   boot.sh BINARY UNIT_DIR
#
# The namespace shares the host's files, so before systemd starts this script makes sure it
# cannot touch the host: /run is a private tmpfs; /usr, /etc and /var are overlays whose writes
# land in that tmpfs (so `dpkg -i` of our package, its units, its conffile and dpkg's database
# vanish with the namespace); /etc/systemd/system is replaced by a tmpfs holding just our units,
# so no host-enabled service starts; the statically wanted units that would change the host
# (tmpfiles --remove on /tmp, sysctl, remount-fs, udev, utmp, sysusers, ...) are masked;
# tmpfiles never touches /dev, /tmp, /var/tmp; the journal is volatile. The built binary is
# installed at the path the unit file names, /usr/sbin/logger, in the /usr overlay.
set -euo pipefail
binary=$1
units=$2
[ "$(id -u)" = 0 ] || { echo "boot.sh: needs root" >&2; exit 1; }

exec unshare --pid --fork --mount --mount-proc --uts --ipc --propagation private \
  env BINARY="$binary" UNITS="$units" bash -euo pipefail -c '
mount -t tmpfs -o mode=755 tmpfs /run
for dir in usr etc var; do
  mkdir -p "/run/overlay/$dir/upper" "/run/overlay/$dir/work"
  mount -t overlay overlay \
    -o "lowerdir=/$dir,upperdir=/run/overlay/$dir/upper,workdir=/run/overlay/$dir/work" "/$dir"
done
# Container images ship a policy-rc.d that forbids maintainer scripts to start services; this
# namespace runs a real systemd, where the services of a package start as on a real host.
rm -f /usr/sbin/policy-rc.d
mkdir -p /run/lock /run/systemd/system /run/systemd/journald.conf.d
mount -t tmpfs -o mode=755 tmpfs /etc/systemd/system
install -m755 "$BINARY" /usr/sbin/logger
cp "$UNITS"/* /etc/systemd/system/
hostname logger-e2e
# No fstab: its generator would make device units that wait 90 s for a udev we do not run.
: > /run/empty-fstab
mount --bind /run/empty-fstab /etc/fstab

printf "[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\n" \
  > /run/systemd/journald.conf.d/volatile.conf
mkdir -p /run/systemd/system/systemd-tmpfiles-setup.service.d
printf "[Service]\nExecStart=\nExecStart=systemd-tmpfiles --create --boot --exclude-prefix=/dev --exclude-prefix=/tmp --exclude-prefix=/var/tmp\n" \
  > /run/systemd/system/systemd-tmpfiles-setup.service.d/host-safe.conf
for unit in timers.target getty.target getty@tty1.service console-getty.service \
    serial-getty@.service systemd-timesyncd.service systemd-sysctl.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    systemd-modules-load.service systemd-remount-fs.service systemd-pstore.service \
    e2scrub_reap.service rsyslog.service syslog.socket postgresql.service \
    systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.service \
    systemd-random-seed.service systemd-update-utmp.service systemd-journal-flush.service \
    systemd-machine-id-commit.service systemd-firstboot.service systemd-sysusers.service \
    systemd-repart.service systemd-hwdb-update.service ldconfig.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-udevd-control.socket systemd-udevd-kernel.socket kmod-static-nodes.service \
    dev-hugepages.mount dev-mqueue.mount sys-kernel-config.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount sys-fs-fuse-connections.mount tmp.mount \
    systemd-pcrphase.service systemd-pcrphase-sysinit.service \
    systemd-ask-password-console.path systemd-ask-password-wall.path \
    systemd-logind.service dbus.service dbus.socket cron.service ssh.service; do
  ln -sf /dev/null "/run/systemd/system/$unit"
done
exec /lib/systemd/systemd --system --unit=basic.target
'
