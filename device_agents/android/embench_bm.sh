#!/system/bin/sh
# embench's phone side: runs TFLite's benchmark_model with a battery sampler beside it.
# POSIX sh (Android's mksh / toybox, BusyBox, dash). Reads nothing from embench; prints:
#   embench-edge NAME UPTIME WALL     window edges on the phone's clock (/proc/uptime, seconds), with
#                                     its wall clock beside (`date +%s.%N`; for a meter on the host)
#   embench-battery STATUS            the battery's charging state at start and at end
#   embench-sample UPTIME CURRENT VOLTAGE UPTIME   raw current_now / voltage_now (units normalised on the
#                                     host), between two reads of the clock: the host stamps a sample with
#                                     the second and drops one whose reads were far apart (descheduled)
#   embench-sampler-ticks N           CPU ticks (utime+stime) the sampler loop used
#   embench-exit CODE                 benchmark_model's exit status
# and benchmark_model's own output, unchanged.
#
# usage: embench_bm.sh BATTERY_DIR|- PERIOD_S IDLE_S -- COMMAND...
# IDLE_S: the idle baseline slept before the model loads (0 when nothing measures power).
bat=$1; period=$2; idle=$3; shift 4

edge() { read -r up _ < /proc/uptime; echo "embench-edge $1 $up $(date +%s.%N 2>/dev/null)"; }
status() { [ -r "$bat/status" ] && read -r s < "$bat/status" && echo "embench-battery $s"; }

spid=
samples="${0%/*}/embench-samples.$$"  # beside this script, in the cache: writable
if [ "$bat" != "-" ] && [ -r "$bat/current_now" ]; then
  status
  (
    while :; do
      read -r up0 _ < /proc/uptime
      read -r c < "$bat/current_now"
      read -r v < "$bat/voltage_now"
      read -r up1 _ < /proc/uptime
      echo "embench-sample $up0 $c $v $up1"
      sleep "$period"
    done
  ) > "$samples" 2>/dev/null &
  spid=$!
fi
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -f "$samples"' EXIT HUP INT TERM

edge idle_start
sleep "$idle"
edge idle_end
"$@" 2>&1
code=$?
edge bm_end
if [ -n "$spid" ]; then
  if [ -r "/proc/$spid/stat" ]; then
    # fields 14 and 15 after the ")" that closes the command name: utime and stime
    set -- $(sed 's/.*) //' "/proc/$spid/stat")
    echo "embench-sampler-ticks $((${12} + ${13}))"
  fi
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  cat "$samples"
  status
fi
echo "embench-exit $code"
exit 0
