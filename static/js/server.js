/* What the server that served this page says about itself: its order rules and which roles see the whole class.
   Read from the page (stockquest.py renders it into index.html), so the dashboard never restates them. */

const stated = JSON.parse(document.getElementById("server-config").textContent);

export const ORDER_RULES = Object.freeze(stated.orders);   // {maxQuantity, maxPrice, marketBuffer, allowShort}
export const CLASS_ROLES = Object.freeze(stated.classRoles); // roles that read every student's data and steer the market
