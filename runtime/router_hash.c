/*
 * runtime/router_hash.c — hash routing (Hash Layers, Roller et al. 2021): no learned gate;
 * the experts of a token are a fixed function of its vocabulary id.
 *
 * The hash, fixed so that runs and tools agree: h_0 = splitmix64(id), h_{i+1} =
 * splitmix64(h_i), where splitmix64(x): z = x + 0x9E3779B97F4A7C15; z = (z ^ (z >> 30)) *
 * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31).
 * Slot j takes h_i mod E for the next i whose expert is not yet taken. Weights 1/k each;
 * the reported score of a slot is p of that expert (used by the probs drop policy). A token
 * without an id (-1) hashes id 0. The balancing bias does not apply (nothing is scored).
 */
#include "router.h"

uint64_t moe_router_hash64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void hash_select(const moe_router_t *r, const moe_router_token_t *tok, double *scratch,
                        int32_t *sel, float *score, float *weight)
{
    uint64_t h = moe_router_hash64((uint64_t)(tok->id < 0 ? 0 : tok->id));
    int      j = 0, i;

    (void)scratch;
    while (j < r->k) {
        int e = (int)(h % (uint64_t)r->E), taken = 0;
        for (i = 0; i < j; i++)
            taken |= sel[i] == e;
        if (!taken) {
            sel[j] = e;
            score[j] = (float)tok->prob[e];
            weight[j] = (float)(1.0 / r->k);
            j++;
        }
        h = moe_router_hash64(h);
    }
}

const moe_router_ops_t moe_router_hash_ops = {
    "hash", "k distinct experts from a fixed hash of the token id (router_hash.c), weights 1/k",
    0, hash_select,
};
