# pareto_memory.gp — written by kvsim report; run `gnuplot pareto_memory.gp` in this directory to redraw
# pareto_memory.png and pareto_memory.svg from pareto_memory.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'pareto_memory.png'
set grid
set key outside right top
set title 'Pareto front, peak memory vs fidelity: llama3.1-8b on h100-sxm, context 96256, batch 1, engine'
set xlabel 'peak memory per rank (GB, lower is better)'
set ylabel 'mean attention-mass recall'
plot 'pareto_memory.dat' index 0 using ($1/1e9):2 with points pt 4 ps 1.5 title 'full', \
     'pareto_memory.dat' index 1 using ($1/1e9):2 with points pt 5 ps 1.5 title 'rocketkv', \
     'pareto_memory.dat' index 2 using ($1/1e9):2 with points pt 6 ps 1.5 title 'quest', \
     'pareto_memory.dat' index 3 using ($1/1e9):2 with points pt 7 ps 1.5 title 'snapkv-gqa', \
     'pareto_memory.dat' index 4 using ($1/1e9):2 with points pt 8 ps 1.5 title 'streaming', \
     'pareto_memory.dat' index 5 using ($1/1e9):2 with lines lw 2 lc rgb 'black' title 'Pareto front'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'pareto_memory.svg'
set grid
set key outside right top
set title 'Pareto front, peak memory vs fidelity: llama3.1-8b on h100-sxm, context 96256, batch 1, engine'
set xlabel 'peak memory per rank (GB, lower is better)'
set ylabel 'mean attention-mass recall'
plot 'pareto_memory.dat' index 0 using ($1/1e9):2 with points pt 4 ps 1.5 title 'full', \
     'pareto_memory.dat' index 1 using ($1/1e9):2 with points pt 5 ps 1.5 title 'rocketkv', \
     'pareto_memory.dat' index 2 using ($1/1e9):2 with points pt 6 ps 1.5 title 'quest', \
     'pareto_memory.dat' index 3 using ($1/1e9):2 with points pt 7 ps 1.5 title 'snapkv-gqa', \
     'pareto_memory.dat' index 4 using ($1/1e9):2 with points pt 8 ps 1.5 title 'streaming', \
     'pareto_memory.dat' index 5 using ($1/1e9):2 with lines lw 2 lc rgb 'black' title 'Pareto front'
unset output
