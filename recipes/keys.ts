/**
 * Where the recipes keep their keys: `recipes/{kind}/{name}/...`, one prefix
 * per recipe instance, so that instances never see each other's keys. A name
 * may not contain "/" (it would nest one instance inside another's prefix).
 */
import { RecipeError } from './errors.js';

export const RECIPES_ROOT = 'recipes/';
const NAME = /^[A-Za-z0-9._:@-]{1,200}$/;

export function checkName(name: string): string {
  if (!NAME.test(name)) throw new RecipeError('invalid_value', `recipe name ${JSON.stringify(name)}: 1 to 200 of A-Z a-z 0-9 . _ : @ -`, { name });
  return name;
}

/** The prefix of one recipe instance, ending in "/". */
export function recipeKey(kind: string, name: string): string {
  return `${RECIPES_ROOT}${kind}/${checkName(name)}/`;
}
