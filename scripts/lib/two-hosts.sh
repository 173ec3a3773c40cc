# Two sealed demo hosts for scripts/demo and bench/run.sh (sourced; needs root and $bin).
# Each host is a network namespace with no default route, joined by a veth pair on
# 198.51.100.0/24, with a bridge vsw1 on 203.0.113.0/24; host B runs a real sshd whose SetEnv
# gives it HPVM_ROOT. two_hosts_down stops sshd by its own pid and deletes both namespaces.

two_hosts_up() {  # two_hosts_up ROOT_A ROOT_B
    hostA="$1" hostB="$2" tag="$$$RANDOM"
    tag="${tag:0:8}"
    nsA="hpvmA-$tag" nsB="hpvmB-$tag"
    keys="$(mktemp -d /tmp/hpvm-ssh.XXXXXX)"
    sshd_pid=
    ip netns add "$nsA"
    ip netns add "$nsB"
    ip link add "dA$tag" type veth peer name "dB$tag"
    ip link set "dA$tag" netns "$nsA"
    ip link set "dB$tag" netns "$nsB"
    local side ns n
    for side in A B; do
        ns="hpvm$side-$tag"; n=$([ $side = A ] && echo 1 || echo 2)
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "198.51.100.$n/24" dev "d$side$tag"
        ip -n "$ns" link set "d$side$tag" up
        ip -n "$ns" link add vsw1 type bridge
        ip -n "$ns" addr add "203.0.113.$n/24" dev vsw1
        ip -n "$ns" link set vsw1 up
    done
    mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$keys/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -f "$keys/id_ed25519"
    cp "$keys/id_ed25519.pub" "$keys/authorized_keys"
    echo "198.51.100.2 $(cut -d' ' -f1,2 "$keys/host_ed25519.pub")" > "$keys/known_hosts"
    cat > "$keys/sshd_config" <<CONFIG
Port 22
ListenAddress 198.51.100.2
HostKey $keys/host_ed25519
PidFile $keys/sshd.pid
AuthorizedKeysFile $keys/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
LogLevel VERBOSE
Subsystem sftp internal-sftp
SetEnv HPVM_ROOT=$hostB HPVM_ACCEL=${HPVM_ACCEL:-tcg}
CONFIG
    ip netns exec "$nsB" /usr/sbin/sshd -D -f "$keys/sshd_config" -E "$keys/sshd.log" &
    sshd_pid=$!
    local _
    for _ in $(seq 50); do grep -q "Server listening" "$keys/sshd.log" 2>/dev/null && break; sleep 0.1; done
}

two_hosts_down() {
    two_hosts_stop_guests
    if [ -n "${sshd_pid:-}" ]; then kill "$sshd_pid" 2>/dev/null; wait "$sshd_pid" 2>/dev/null || true; fi
    sshd_pid=
    [ -n "${nsA:-}" ] && ip netns del "$nsA" 2>/dev/null
    [ -n "${nsB:-}" ] && ip netns del "$nsB" 2>/dev/null
    [ -n "${keys:-}" ] && rm -rf "$keys"
    true
}

# on A|B COMMAND ARGS...: an hpvm command on a host, in its namespace, with its root and SSH set-up.
on() {
    local host=$1; shift
    HPVM_ROOT="$([ "$host" = A ] && echo "$hostA" || echo "$hostB")" \
        HPVM_SSH_IDENTITY="$keys/id_ed25519" HPVM_SSH_KNOWN_HOSTS="$keys/known_hosts" HPVM_REMOTE_COMMAND="$bin/hpvmmigrate" \
        ip netns exec "$([ "$host" = A ] && echo "$nsA" || echo "$nsB")" "$bin/$1" "${@:2}"
}

# two_hosts_stop_guests: stops, by its pid, every QEMU that still runs a guest of either host (the
# pid in its run folder, checked to be a QEMU before it is killed).
two_hosts_stop_guests() {
    local pidfile pid
    for pidfile in "${hostA:-/nonexistent}"/var/opt/hpvm/run/*/pid "${hostB:-/nonexistent}"/var/opt/hpvm/run/*/pid; do
        [ -f "$pidfile" ] || continue
        pid="$(cat "$pidfile" 2>/dev/null)" || continue
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in qemu-system*) kill -9 "$pid" 2>/dev/null || true ;; esac
    done
}
