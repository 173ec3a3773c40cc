# The release build, as users get it (scripts/package) and as bench/run.sh measures it:
#   --static-swift-stdlib   the Swift runtime linked in: no Swift installation needed to run hpvm;
#   -no-pie                 no run-time relocation of the 90 MB binary (≈ 1.3 ms less start-up);
#   --toolset ...           libstdc++ linked in too, and no symbol of ours exported (scripts/lib/release/ld).
# Start-up is most of a short command's cost: bench/RESULTS.md. Source this from the repository root.
release_flags=(-c release --static-swift-stdlib -Xlinker -no-pie --toolset scripts/lib/release/toolset.json)
