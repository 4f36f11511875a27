# Bar charts for bench/fio:
#   gnuplot -e "datadir='DIR'; imgdir='DIR'; prefix='fio-peers'" plot.gp
# Reads DIR/{throughput,iops,metadata}.dat written by report.py (first row:
# peer names; "-" = not measured) and writes imgdir/PREFIX-{throughput,iops,metadata}.png.
if (!exists("datadir")) datadir = "."
if (!exists("imgdir")) imgdir = datadir
if (!exists("prefix")) prefix = "fio-peers"
subtitle = system("cat '".datadir."/title.txt' 2>/dev/null")
n = int(system("cat '".datadir."/npeers.txt' 2>/dev/null || echo 5"))

set terminal pngcairo size 1000,520 font "DejaVu Sans,11" noenhanced
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set key top right outside vertical
set grid ytics lc rgb "#dddddd"
set xtics nomirror
set ytics nomirror
set linetype 1 lc rgb "#d62728"
set linetype 2 lc rgb "#1f77b4"
set linetype 3 lc rgb "#ff7f0e"
set linetype 4 lc rgb "#2ca02c"
set linetype 5 lc rgb "#7f7f7f"

set output imgdir."/".prefix."-throughput.png"
set title "Sequential 1 MiB IO (MiB/s, log scale, higher is better)\n".subtitle
set ylabel "MiB/s"
set logscale y
set yrange [1:*]
plot for [i=2:n+1] datadir."/throughput.dat" using i:xtic(1) title columnheader(i) lt (i-1)

set output imgdir."/".prefix."-iops.png"
set title "Random 4 KiB, O_DIRECT, QD16 (IOPS, log scale, higher is better)\n".subtitle
set ylabel "IOPS"
set yrange [100:*]
plot for [i=2:n+1] datadir."/iops.dat" using i:xtic(1) title columnheader(i) lt (i-1)

set output imgdir."/".prefix."-metadata.png"
set title "Metadata, one thread (operations/s, log scale, higher is better)\n".subtitle
set ylabel "operations/s"
set yrange [10:*]
plot for [i=2:n+1] datadir."/metadata.dat" using i:xtic(1) title columnheader(i) lt (i-1)
