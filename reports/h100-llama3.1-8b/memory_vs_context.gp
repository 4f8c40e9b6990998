# memory_vs_context.gp — written by kvsim report; run `gnuplot memory_vs_context.gp` in this directory to redraw
# memory_vs_context.png and memory_vs_context.svg from memory_vs_context.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'memory_vs_context.png'
set grid
set key outside right top
set title 'peak memory per GPU: llama3.1-8b, TP 1, batch 1, engine harness'
set xlabel 'context (prompt tokens)'
set ylabel 'peak memory per rank (GB)'
set logscale x 2
plot 'memory_vs_context.dat' index 0 using 1:($2/1e9) with linespoints lc 1 dt 1 title 'h100-sxm full', \
     'memory_vs_context.dat' index 1 using 1:($2/1e9) with linespoints lc 1 dt 2 title 'h100-sxm rocketkv', \
     'memory_vs_context.dat' index 2 using 1:($2/1e9) with lines lc 1 dt 3 title 'h100-sxm capacity', \
     'memory_vs_context.dat' index 3 using 1:($2/1e9) with linespoints lc 2 dt 1 title 'a100-80g full', \
     'memory_vs_context.dat' index 4 using 1:($2/1e9) with linespoints lc 2 dt 2 title 'a100-80g rocketkv', \
     'memory_vs_context.dat' index 5 using 1:($2/1e9) with lines lc 2 dt 3 title 'a100-80g capacity'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'memory_vs_context.svg'
set grid
set key outside right top
set title 'peak memory per GPU: llama3.1-8b, TP 1, batch 1, engine harness'
set xlabel 'context (prompt tokens)'
set ylabel 'peak memory per rank (GB)'
set logscale x 2
plot 'memory_vs_context.dat' index 0 using 1:($2/1e9) with linespoints lc 1 dt 1 title 'h100-sxm full', \
     'memory_vs_context.dat' index 1 using 1:($2/1e9) with linespoints lc 1 dt 2 title 'h100-sxm rocketkv', \
     'memory_vs_context.dat' index 2 using 1:($2/1e9) with lines lc 1 dt 3 title 'h100-sxm capacity', \
     'memory_vs_context.dat' index 3 using 1:($2/1e9) with linespoints lc 2 dt 1 title 'a100-80g full', \
     'memory_vs_context.dat' index 4 using 1:($2/1e9) with linespoints lc 2 dt 2 title 'a100-80g rocketkv', \
     'memory_vs_context.dat' index 5 using 1:($2/1e9) with lines lc 2 dt 3 title 'a100-80g capacity'
unset output
