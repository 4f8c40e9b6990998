# max_batch_vs_context.gp — written by kvsim report; run `gnuplot max_batch_vs_context.gp` in this directory to redraw
# max_batch_vs_context.png and max_batch_vs_context.svg from max_batch_vs_context.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'max_batch_vs_context.png'
set grid
set key outside right top
set title 'largest batch that fits: llama3.1-8b, TP 1, engine harness'
set xlabel 'context (prompt tokens)'
set ylabel 'largest batch'
set logscale x 2
set logscale y 2
plot 'max_batch_vs_context.dat' index 0 using 1:2 with linespoints lc 1 dt 1 title 'h100-sxm full', \
     'max_batch_vs_context.dat' index 1 using 1:2 with linespoints lc 1 dt 2 title 'h100-sxm rocketkv', \
     'max_batch_vs_context.dat' index 2 using 1:2 with linespoints lc 2 dt 1 title 'a100-80g full', \
     'max_batch_vs_context.dat' index 3 using 1:2 with linespoints lc 2 dt 2 title 'a100-80g rocketkv'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'max_batch_vs_context.svg'
set grid
set key outside right top
set title 'largest batch that fits: llama3.1-8b, TP 1, engine harness'
set xlabel 'context (prompt tokens)'
set ylabel 'largest batch'
set logscale x 2
set logscale y 2
plot 'max_batch_vs_context.dat' index 0 using 1:2 with linespoints lc 1 dt 1 title 'h100-sxm full', \
     'max_batch_vs_context.dat' index 1 using 1:2 with linespoints lc 1 dt 2 title 'h100-sxm rocketkv', \
     'max_batch_vs_context.dat' index 2 using 1:2 with linespoints lc 2 dt 1 title 'a100-80g full', \
     'max_batch_vs_context.dat' index 3 using 1:2 with linespoints lc 2 dt 2 title 'a100-80g rocketkv'
unset output
